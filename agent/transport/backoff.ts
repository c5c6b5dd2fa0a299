import { Rng } from '../raft/types';

export interface BackoffOptions {
  /** First delay after a failure. */
  initialMs: number;
  /** Ceiling: kept low so that a restarted peer is reached again within about a second. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 50, maxMs: 1000 };

/** Math.random behind the Rng interface, for when no seeded source is injected. */
export const mathRandomRng: Rng = { intn: (n: number) => Math.floor(Math.random() * n) };

/**
 * Exponential back-off with "equal jitter": each delay is half the current step plus a
 * random part of the other half, so nodes that lost a peer together do not redial in
 * lockstep, and no delay falls below half a step.
 */
export class Backoff {
  private step: number;

  constructor(
    private readonly opts: BackoffOptions,
    private readonly rng: Rng,
  ) {
    this.step = opts.initialMs;
  }

  next(): number {
    const d = this.step;
    this.step = Math.min(this.step * 2, this.opts.maxMs);
    const half = Math.floor(d / 2);
    return d - half + this.rng.intn(half + 1);
  }

  /** Jump to the ceiling: for refusals that waiting will not cure (wrong cluster, version). */
  toMax(): void {
    this.step = this.opts.maxMs;
  }

  reset(): void {
    this.step = this.opts.initialMs;
  }
}
