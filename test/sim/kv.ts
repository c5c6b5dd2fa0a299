import { Entry, EntryType } from '../../agent/raft/types';

/**
 * The replicated key-value state machine the simulator runs on every node, and the byte
 * formats it uses. Everything here is tiny and allocation-light because it runs on every
 * applied entry of every node.
 *
 * A write is `[op=1 u8][id u32 BE][key u8]` and sets `key := id`: ids are unique per run,
 * so a value names the exact write that produced it and a read can be checked against
 * the one history that every node must agree on.
 */

/** Size of the key space: small, so that reads usually observe some write. */
export const KEYS = 8;

const OP_WRITE = 1;

export function encodeWrite(id: number, key: number): Uint8Array {
  const out = new Uint8Array(6);
  out[0] = OP_WRITE;
  out[1] = id >>> 24;
  out[2] = (id >>> 16) & 0xff;
  out[3] = (id >>> 8) & 0xff;
  out[4] = id & 0xff;
  out[5] = key;
  return out;
}

/** The write a Normal entry carries, or null for a leader's empty entry (or anything else). */
export function decodeWrite(data: Uint8Array): { id: number; key: number } | null {
  if (data.length !== 6 || data[0] !== OP_WRITE) return null;
  const id = ((data[1] << 24) | (data[2] << 16) | (data[3] << 8) | data[4]) >>> 0;
  return { id, key: data[5] };
}

/** Read requests are identified by a 4-byte context holding the read id. */
export function encodeReadContext(id: number): Uint8Array {
  return new Uint8Array([id >>> 24, (id >>> 16) & 0xff, (id >>> 8) & 0xff, id & 0xff]);
}

export function decodeReadContext(ctx: Uint8Array): number {
  if (ctx.length !== 4) return -1;
  return ((ctx[0] << 24) | (ctx[1] << 16) | (ctx[2] << 8) | ctx[3]) >>> 0;
}

const FNV_PRIME = 0x01000193;

/** FNV-1a over an entry's type, term and data: identifies "the same entry" cheaply. */
export function entryHash(e: Entry): number {
  let h = Math.imul(0x811c9dc5 ^ e.type, FNV_PRIME);
  h = Math.imul(h ^ (e.term & 0xffff), FNV_PRIME);
  h = Math.imul(h ^ (e.term >>> 16), FNV_PRIME);
  const d = e.data;
  for (let i = 0; i < d.length; i++) h = Math.imul(h ^ d[i], FNV_PRIME);
  return h >>> 0;
}

/**
 * Extends a hash of the applied prefix by one entry. Two nodes with equal chains at an
 * index applied the same entries up to it, so a snapshot image (which carries the chain)
 * can be checked against what every other node applied without replaying anything.
 */
export function chainNext(chain: number, entryH: number): number {
  let h = Math.imul(chain ^ 0x5bd1e995, 0x9e3779b1) ^ entryH;
  h ^= h >>> 15;
  h = Math.imul(h, 0x85ebca77);
  h ^= h >>> 13;
  return h >>> 0;
}

export class KvStateMachine {
  /** values[key] = id of the last write applied to key (0: never written). */
  readonly values = new Uint32Array(KEYS);
  applied = 0;
  /** Hash chain of the applied prefix (see chainNext). */
  chain = 0;

  /** Applies a committed entry of any type; returns the write it carried, if any. */
  apply(e: Entry, chainAfter: number): { id: number; key: number } | null {
    this.applied = e.index;
    this.chain = chainAfter;
    if (e.type !== EntryType.Normal) return null;
    const w = decodeWrite(e.data);
    if (w !== null && w.key < KEYS) this.values[w.key] = w.id;
    return w;
  }

  /** Image for a snapshot: [applied, chain, values...] as u32 words. */
  image(): Uint8Array {
    const words = new Uint32Array(2 + KEYS);
    words[0] = this.applied;
    words[1] = this.chain;
    words.set(this.values, 2);
    return new Uint8Array(words.buffer);
  }

  /** Replaces the state with a snapshot image (index 0 and empty data mean "nothing yet"). */
  restore(data: Uint8Array): void {
    if (data.length === 0) {
      this.applied = 0;
      this.chain = 0;
      this.values.fill(0);
      return;
    }
    if (data.length !== 4 * (2 + KEYS)) throw new Error(`snapshot image has ${data.length} bytes, want ${4 * (2 + KEYS)}`);
    const words = new Uint32Array(data.slice().buffer);
    this.applied = words[0];
    this.chain = words[1];
    this.values.set(words.subarray(2));
  }
}
