import { limitSize } from '../raft/memory_storage';
import { CompactedError, Entry, Snapshot, UnavailableError } from '../raft/types';

/**
 * The in-memory copy of the log since the last snapshot, from which DiskStorage answers the
 * core's reads. It behaves as MemoryStorage does (the parity tests run them side by side), but
 * an append costs the entries appended rather than the length of the log: this is the path
 * every Ready takes in production, with up to a segment's worth of entries in memory.
 */
export class LogCache {
  private snap: Snapshot = { metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: new Uint8Array(0) };
  /** Index and term of the last compacted entry (the snapshot's, or a later one after compact). */
  private base = 0;
  private baseTerm = 0;
  /** ents[k] is entry base + 1 + k. */
  private ents: Entry[] = [];

  firstIndex(): number {
    return this.base + 1;
  }

  lastIndex(): number {
    return this.base + this.ents.length;
  }

  term(i: number): number {
    if (i < this.base) throw new CompactedError(i, this.base + 1);
    if (i > this.lastIndex()) throw new UnavailableError(i, this.lastIndex());
    return i === this.base ? this.baseTerm : this.ents[i - this.base - 1].term;
  }

  entries(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    if (lo <= this.base) throw new CompactedError(lo, this.base + 1);
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1, this.lastIndex());
    if (hi <= lo) return [];
    return limitSize(this.ents.slice(lo - this.base - 1, hi - this.base - 1), maxBytes);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces everything with a newer snapshot; an older one is ignored. */
  applySnapshot(snap: Snapshot): void {
    if (snap.metadata.index <= this.snap.metadata.index) return;
    this.snap = snap;
    this.base = snap.metadata.index;
    this.baseTerm = snap.metadata.term;
    this.ents = [];
  }

  /** Records a snapshot of this log, which the caller has checked is newer and within the log. */
  recordSnapshot(snap: Snapshot): void {
    this.snap = snap;
  }

  /** Drops entries before `index`; entry `index` becomes the base. */
  compact(index: number): void {
    if (index <= this.base) return;
    if (index > this.lastIndex()) throw new UnavailableError(index, this.lastIndex());
    this.baseTerm = this.term(index);
    this.ents = this.ents.slice(index - this.base);
    this.base = index;
  }

  /**
   * Appends entries that connect to the log (checked by the caller), replacing any conflicting
   * suffix in place; entries at or below the base are already compacted and skipped.
   */
  append(entries: Entry[]): void {
    let skip = 0;
    if (entries.length > 0 && entries[0].index <= this.base) skip = this.base + 1 - entries[0].index;
    if (skip >= entries.length) return;
    const at = entries[skip].index - this.base - 1;
    if (at > this.ents.length) {
      throw new Error(`missing log entry: last index is ${this.lastIndex()}, appending at ${entries[skip].index}`);
    }
    this.ents.length = at;
    for (let k = skip; k < entries.length; k++) this.ents.push(entries[k]);
  }
}
