import { Message, NodeId } from '../../agent/raft/types';

/**
 * The simulator's single timeline: a binary min-heap of events ordered by (time, seq).
 * `seq` breaks ties in insertion order, so a run is a pure function of its seed.
 *
 * Time is logical, in units of 1/UNITS_PER_TICK of a Raft tick: messages take a few units,
 * nodes tick every UNITS_PER_TICK units at their own phase, and so deliveries interleave
 * with ticks the way they do on real machines.
 */
export const UNITS_PER_TICK = 10;

export enum EventKind {
  /** Deliver `msg` to `node`, sent by incarnation `inc` of node `src`. */
  Deliver,
  /** Node `node` ticks (recurring). */
  Tick,
  /** The workload and fault injector act (recurring, once per tick). */
  World,
  /** Node `node` is shut down for good (it was removed from the cluster). */
  Shutdown,
  /** Incarnation `inc` of node `node` crashes (a fault aimed at a new leader). */
  Crash,
  /** Node `node` is cut off from everyone (a fault aimed at a new leader). */
  Isolate,
  /** Node `node` sees its connections to leader `src` reset (src crashed). */
  LeaderLost,
  /** The disk write that incarnation `inc` of node `node` started is durable (agent loop). */
  WriteDone,
  /** Incarnation `inc` of leader `node` sends followers the commit index they lack (agent loop). */
  CommitFlush,
}

export interface SimEvent {
  time: number;
  seq: number;
  kind: EventKind;
  node: NodeId;
  msg: Message | null;
  /** Deliver only: the sending node and its incarnation (a forwarded TransferLeader names the transferee in msg.from, not the sender). */
  src: NodeId;
  inc: number;
  /** Deliver only: the network lost it (it still "arrives" so the sender can be told). */
  lost: boolean;
}

export class EventQueue {
  private readonly heap: SimEvent[] = [];
  private seq = 0;
  /** Time of the event being processed. */
  now = 0;

  get size(): number {
    return this.heap.length;
  }

  push(time: number, kind: EventKind, node: NodeId, msg: Message | null = null, src = 0, inc = 0, lost = false): void {
    this.insert({ time, seq: this.seq++, kind, node, msg, src, inc, lost });
  }

  /** Puts a popped event back for a later time, behind everything already due then. */
  postpone(ev: SimEvent, time: number): void {
    ev.time = time;
    ev.seq = this.seq++;
    this.insert(ev);
  }

  private insert(ev: SimEvent): void {
    const h = this.heap;
    let i = h.length;
    h.push(ev);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(ev, h[p])) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = ev;
  }

  /** Removes and returns the earliest event, advancing `now` to its time. */
  pop(): SimEvent | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const r = l + 1;
        const c = r < h.length && before(h[r], h[l]) ? r : l;
        if (!before(h[c], last)) break;
        h[i] = h[c];
        i = c;
      }
      h[i] = last;
    }
    this.now = top.time;
    return top;
  }

  peekTime(): number {
    return this.heap.length === 0 ? Infinity : this.heap[0].time;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}
