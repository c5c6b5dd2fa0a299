import { SeededRng } from '../../agent/raft/rng';
import { Message, MessageType, NodeId } from '../../agent/raft/types';
import { EventKind, EventQueue, UNITS_PER_TICK } from './events';

/** Rates of the faults the network injects into each message, all in [0, 1]. */
export interface FaultRates {
  loss: number;
  duplicate: number;
  /** Chance that a message is held back (which reorders it). */
  delay: number;
}

export const NO_FAULTS: FaultRates = { loss: 0, duplicate: 0, delay: 0 };

/** Normal one-way latency: 1..BASE_LATENCY units, well under a tick. */
const BASE_LATENCY = 4;
/** A delayed message usually arrives up to a few heartbeats late... */
const SHORT_EXTRA_DELAY = 6 * UNITS_PER_TICK;
/** ...but sometimes after more than an election timeout, when the cluster has moved on (a stalled link). */
const LONG_EXTRA_DELAY = 30 * UNITS_PER_TICK;

/** Node ids stay below this, so an ordered pair packs into one number. */
const PAIR = 1 << 16;

/**
 * An in-memory network. Every message becomes a Deliver event on the shared timeline; lost
 * ones too, flagged, so the simulator can give the sender the feedback a real transport
 * gives (a snapshot that did not arrive must be reported, or the leader waits for it forever).
 * Partitions are sets of blocked directed links, consulted at delivery time, so a partition
 * also swallows what was already in flight.
 */
export class Network {
  faults: FaultRates = NO_FAULTS;
  /** Messages sent meanwhile are delivered promptly and once, whatever `faults` says. */
  quiet = false;
  private readonly blocked = new Set<number>();
  sent = 0;

  constructor(
    private readonly rng: SeededRng,
    private readonly queue: EventQueue,
  ) {}

  /** Sends `m` from node `src` (incarnation `incarnation`) to m.to. */
  send(m: Message, src: NodeId, incarnation: number): void {
    this.sent++;
    const f = this.quiet ? NO_FAULTS : this.faults;
    const lost = f.loss > 0 && this.rng.chance(f.loss);
    this.queue.push(this.queue.now + this.latency(), EventKind.Deliver, m.to, m, src, incarnation, lost);
    if (!lost && f.duplicate > 0 && this.rng.chance(f.duplicate)) {
      // A copy, not the same object: a receiver may keep the message it was given.
      this.queue.push(this.queue.now + this.latency(), EventKind.Deliver, m.to, { ...m }, src, incarnation, false);
    }
  }

  private latency(): number {
    let d = 1 + this.rng.intn(BASE_LATENCY);
    if (!this.quiet && this.faults.delay > 0 && this.rng.chance(this.faults.delay)) {
      d += this.rng.intn(this.rng.chance(0.25) ? LONG_EXTRA_DELAY : SHORT_EXTRA_DELAY);
    }
    return d;
  }

  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blocked.size > 0 && this.blocked.has(from * PAIR + to);
  }

  /** Blocks traffic from every node of `from` to every node of `to` (one way). */
  cut(from: NodeId[], to: NodeId[]): void {
    for (const a of from) for (const b of to) if (a !== b) this.blocked.add(a * PAIR + b);
  }

  /** Splits `a` from `b` in both directions. */
  partition(a: NodeId[], b: NodeId[]): void {
    this.cut(a, b);
    this.cut(b, a);
  }

  get partitioned(): boolean {
    return this.blocked.size > 0;
  }

  healPartitions(): void {
    this.blocked.clear();
  }

  /** Restores every link to and from `id`, leaving other partitions in place. */
  reconnect(id: NodeId): void {
    for (const pair of [...this.blocked]) {
      if (Math.floor(pair / PAIR) === id || pair % PAIR === id) this.blocked.delete(pair);
    }
  }
}

/** Short human form of a message for traces. */
export function describeMessage(m: Message): string {
  let s = `${MessageType[m.type]} n${m.from}->n${m.to} t${m.term}`;
  if (m.type === MessageType.App || m.type === MessageType.Vote || m.type === MessageType.PreVote) s += ` last=(${m.index}, t${m.logTerm})`;
  if (m.entries.length > 0) s += ` ents=[${m.entries[0].index}..${m.entries[m.entries.length - 1].index}]`;
  if (m.commit !== 0) s += ` commit=${m.commit}`;
  if (m.type === MessageType.AppResp || m.type === MessageType.ReadIndexResp) s += ` idx=${m.index}`;
  if (m.reject) s += ` REJECT hint=${m.rejectHint}`;
  if (m.snapshot !== null) s += ` snap=(${m.snapshot.metadata.index}, t${m.snapshot.metadata.term})`;
  return s;
}
