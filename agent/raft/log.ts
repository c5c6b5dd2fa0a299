import { Unstable } from './log_unstable';
import { limitSize } from './memory_storage';
import { CompactedError, Entry, Snapshot, Storage } from './types';

/**
 * The replicated log as the core sees it: durable entries (Storage) followed by the
 * unstable tail, with the commit and applied indexes. Mirrors etcd's log.go.
 */
export class RaftLog {
  readonly unstable: Unstable;
  committed: number;
  applied: number;

  constructor(
    readonly storage: Storage,
    private readonly maxApplyBytes: number,
  ) {
    const first = storage.firstIndex();
    this.unstable = new Unstable(storage.lastIndex() + 1);
    this.committed = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** The last index known durable (what this node may count as its own acknowledgement). */
  stableIndex(): number {
    return this.unstable.offset - 1;
  }

  /** Term at i; 0 beyond the last index; throws CompactedError below firstIndex-1. */
  term(i: number): number {
    const dummy = this.firstIndex() - 1;
    if (i < dummy) throw new CompactedError(i, dummy + 1);
    if (i > this.lastIndex()) return 0;
    const t = this.unstable.maybeTerm(i);
    return t !== null ? t : this.storage.term(i);
  }

  zeroTermOnCompacted(i: number): number {
    try {
      return this.term(i);
    } catch (e) {
      if (e instanceof CompactedError) return 0;
      throw e;
    }
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  matchTerm(i: number, t: number): boolean {
    try {
      return this.term(i) === t;
    } catch (e) {
      if (e instanceof CompactedError) return false;
      throw e;
    }
  }

  /** Raft §5.4.1: is a log ending at (lasti, term) at least as up to date as ours? */
  isUpToDate(lasti: number, term: number): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm || (term === ourTerm && lasti >= this.lastIndex());
  }

  /**
   * Follower side of AppendEntries (Figure 2, receiver steps 2-5). Returns the index of the
   * last new entry, or null when the entry at `index` does not have term `logTerm`.
   * `conflictAt` reports where existing entries were replaced (0 when none were).
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: Entry[]): { lastNew: number; from: number } | null {
    if (!this.matchTerm(index, logTerm)) return null;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    let from = 0;
    if (ci !== 0) {
      if (ci <= this.committed) {
        throw new Error(`entry ${ci} conflicts with committed entry (committed ${this.committed})`);
      }
      this.append(ents.slice(ci - (index + 1)));
      from = ci;
    }
    this.commitTo(Math.min(committed, lastNew));
    return { lastNew, from };
  }

  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0].index - 1;
    if (after < this.committed) {
      throw new Error(`appending after ${after} would overwrite committed entries (committed ${this.committed})`);
    }
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /** The first entry whose term differs from ours (or that we lack); 0 if all match. */
  private findConflict(ents: Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index <= index whose term is <= term, with that term (0 if unknown). Used for
   * fast back-off after a rejected append: skips a whole term of conflicting entries per
   * round trip instead of one entry (thesis §5.3, etcd's findConflictByTerm).
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (; index > 0; index--) {
      let t: number;
      try {
        t = this.term(index);
      } catch (e) {
        if (e instanceof CompactedError) return { index, term: 0 };
        throw e;
      }
      if (t <= term) return { index, term: t };
    }
    return { index: 0, term: 0 };
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries;
  }

  hasNextCommittedEnts(): boolean {
    return this.committed > Math.max(this.applied, this.firstIndex() - 1);
  }

  nextCommittedEnts(): Entry[] {
    const lo = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed < lo) return [];
    return this.slice(lo, this.committed + 1, this.maxApplyBytes);
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  commitTo(toCommit: number): void {
    if (this.committed >= toCommit) return;
    if (this.lastIndex() < toCommit) {
      throw new CommitBeyondLogError(toCommit, this.lastIndex());
    }
    this.committed = toCommit;
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    if (this.committed < i || i < this.applied) {
      throw new Error(`applied ${i} is out of range [previous applied ${this.applied}, committed ${this.committed}]`);
    }
    this.applied = i;
  }

  /** Leader: commit `maxIndex` if it is of the current term (§5.4.2: never count replicas of older terms). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.zeroTermOnCompacted(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }

  /** Entries [lo, hi), at most maxBytes of data (but at least one). Throws CompactedError if lo is compacted. */
  slice(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    if (lo >= hi) return [];
    const first = this.firstIndex();
    if (lo < first) throw new CompactedError(lo, first);
    const last = this.lastIndex();
    if (hi > last + 1) throw new Error(`slice [${lo}, ${hi}) out of bound (last index ${last})`);
    const off = this.unstable.offset;
    let ents: Entry[] = [];
    if (lo < off) {
      ents = this.storage.entries(lo, Math.min(hi, off), maxBytes);
      if (ents.length < Math.min(hi, off) - lo) return ents; // hit the size limit
    }
    if (hi > off) {
      const tail = this.unstable.slice(Math.max(lo, off), hi);
      ents = ents.length > 0 ? ents.concat(tail) : tail;
    }
    return limitSize(ents, maxBytes);
  }

  /** Entries from i to the end, at most maxBytes. */
  entries(i: number, maxBytes: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxBytes);
  }
}

/**
 * A leader said entries past the end of this log are committed. It says so only up to what
 * a follower acknowledged holding, so this log lost entries it had acknowledged: its data
 * was emptied, replaced or restored from an older copy.
 */
export class CommitBeyondLogError extends Error {
  constructor(
    readonly commit: number,
    readonly lastIndex: number,
  ) {
    super(`commit ${commit} is out of range [last index ${lastIndex}]`);
    this.name = 'CommitBeyondLogError';
  }
}
