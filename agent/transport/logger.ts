/**
 * The logging the transport needs: pino's call shape (fields first, then the message), so a
 * pino logger or a child of one can be passed as is, and tests can pass a recorder.
 */
export type LogFn = (fields: Record<string, unknown>, message: string) => void;

export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

/**
 * Logs a recurring condition once, then again at most every `intervalMs`, and at debug in
 * between: a peer that stays down or misconfigured must not flood the log once a second,
 * yet an operator who looks later still finds a recent line.
 */
export class LogThrottle {
  private readonly last = new Map<string, number>();

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
    /** Distinct keys remembered; beyond it the memory is cleared (garbage from many addresses). */
    private readonly maxKeys = 1024,
  ) {}

  /** True when a line for `key` should be logged at its full level now. */
  shouldLog(key: string): boolean {
    const t = this.now();
    const prev = this.last.get(key);
    if (prev !== undefined && t - prev < this.intervalMs) return false;
    if (this.last.size >= this.maxKeys) this.last.clear();
    this.last.set(key, t);
    return true;
  }

  /** The condition ended (e.g. the peer is reachable again): the next occurrence logs at once. */
  reset(key: string): void {
    this.last.delete(key);
  }
}
