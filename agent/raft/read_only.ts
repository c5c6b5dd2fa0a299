import { Message, NodeId } from './types';

/**
 * Pending ReadIndex requests on the leader (thesis §6.4). Each request records the commit
 * index when it arrived and is answered once a quorum acknowledges a heartbeat sent after
 * it, proving this node was still leader at that moment. Acknowledging a later request
 * also confirms every earlier one. Mirrors etcd's read_only.go (ReadOnlySafe).
 */
interface ReadIndexStatus {
  req: Message;
  index: number;
  acks: Map<NodeId, boolean>;
}

export function contextKey(ctx: Uint8Array | null): string {
  if (!ctx) return '';
  let s = '';
  for (let i = 0; i < ctx.length; i++) s += String.fromCharCode(ctx[i]);
  return s;
}

export class ReadOnly {
  private pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  addRequest(index: number, m: Message): void {
    const key = contextKey(m.context);
    if (this.pending.has(key)) return;
    this.pending.set(key, { index, req: m, acks: new Map() });
    this.queue.push(key);
  }

  /** Records an acknowledgement of the heartbeat carrying `context`; returns the acks so far. */
  recvAck(id: NodeId, context: Uint8Array | null): Map<NodeId, boolean> | null {
    const st = this.pending.get(contextKey(context));
    if (!st) return null;
    st.acks.set(id, true);
    return st.acks;
  }

  /** Releases every request up to and including the one with `context`. */
  advance(context: Uint8Array | null): { req: Message; index: number }[] {
    const key = contextKey(context);
    const i = this.queue.indexOf(key);
    if (i < 0) return [];
    const done = this.queue.splice(0, i + 1);
    const out: { req: Message; index: number }[] = [];
    for (const k of done) {
      const st = this.pending.get(k)!;
      this.pending.delete(k);
      out.push({ req: st.req, index: st.index });
    }
    return out;
  }

  lastPendingContext(): Uint8Array | null {
    if (this.queue.length === 0) return null;
    return this.pending.get(this.queue[this.queue.length - 1])!.req.context;
  }

  size(): number {
    return this.queue.length;
  }
}
