import {
  CompactedError,
  ConfState,
  Entry,
  HardState,
  Snapshot,
  Storage,
  UnavailableError,
} from './types';
import { cloneConfState } from './confchange';

/**
 * Storage held in memory: what the simulator and unit tests use as "disk", and the model
 * the on-disk storage must behave like. ents[0] is a placeholder carrying the index and
 * term of the last compacted entry (the snapshot's), so term(firstIndex-1) always answers.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0, vote: 0, commit: 0 };
  private snap: Snapshot = { metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: new Uint8Array(0) };
  private ents: Entry[] = [placeholder(0, 0)];

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: cloneConfState(this.snap.metadata.confState) };
  }

  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  entries(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    const offset = this.ents[0].index;
    if (lo <= offset) throw new CompactedError(lo, offset + 1);
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1, this.lastIndex());
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxBytes);
  }

  term(i: number): number {
    const offset = this.ents[0].index;
    if (i < offset) throw new CompactedError(i, offset + 1);
    if (i - offset >= this.ents.length) throw new UnavailableError(i, this.lastIndex());
    return this.ents[i - offset].term;
  }

  firstIndex(): number {
    return this.ents[0].index + 1;
  }

  lastIndex(): number {
    return this.ents[0].index + this.ents.length - 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces everything with the snapshot (a follower that was too far behind). */
  applySnapshot(snap: Snapshot): void {
    if (snap.metadata.index <= this.snap.metadata.index) return;
    this.snap = snap;
    this.ents = [placeholder(snap.metadata.index, snap.metadata.term)];
    // A snapshot holds only committed entries: the stored commit index never lags it.
    if (this.hardState.commit < snap.metadata.index) this.hardState = { ...this.hardState, commit: snap.metadata.index };
  }

  /** Records the state machine's image at `index` (which must be applied, hence in the log). */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.snap.metadata.index) return this.snap;
    if (index > this.lastIndex()) throw new UnavailableError(index, this.lastIndex());
    this.snap = { metadata: { index, term: this.term(index), confState: cloneConfState(confState) }, data };
    return this.snap;
  }

  /** Drops entries before `index`; the entry at `index` becomes the placeholder. */
  compact(index: number): void {
    const offset = this.ents[0].index;
    if (index <= offset) return;
    if (index > this.lastIndex()) throw new UnavailableError(index, this.lastIndex());
    const kept = this.ents.slice(index - offset);
    kept[0] = placeholder(index, kept[0].term);
    this.ents = kept;
  }

  /** Appends entries, replacing any conflicting suffix (entries[0].index may be <= lastIndex). */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0].index + entries.length - 1;
    if (last < first) return; // all already compacted
    if (first > entries[0].index) entries = entries.slice(first - entries[0].index);
    const offset = entries[0].index - this.ents[0].index;
    if (offset > this.ents.length) {
      throw new Error(`missing log entry: last index is ${this.lastIndex()}, appending at ${entries[0].index}`);
    }
    // In place: truncate a conflicting suffix, then push (no copy of the whole log per append).
    this.ents.length = offset;
    for (const e of entries) this.ents.push(e);
  }
}

function placeholder(index: number, term: number): Entry {
  return { index, term, type: 0, data: new Uint8Array(0) };
}

/** The longest prefix of `ents` within maxBytes of data, but always at least one entry. */
export function limitSize(ents: Entry[], maxBytes: number): Entry[] {
  if (ents.length === 0 || maxBytes === Infinity) return ents;
  let size = ents[0].data.length;
  let n = 1;
  for (; n < ents.length; n++) {
    size += ents[n].data.length;
    if (size > maxBytes) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}
