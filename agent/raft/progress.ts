import { PeerProgress, ProgressState } from './rawnode';

/**
 * A bounded window of App messages in flight to one follower (by last entry index), so the
 * leader pipelines appends without waiting for each reply but never floods a slow peer.
 * Mirrors etcd's tracker/inflights.go.
 */
export class Inflights {
  private buf: number[];
  private start = 0;
  count = 0;

  constructor(readonly size: number) {
    this.buf = new Array<number>(size);
  }

  add(index: number): void {
    if (this.full()) throw new Error('cannot add into a full inflights window');
    this.buf[(this.start + this.count) % this.size] = index;
    this.count++;
  }

  /** Frees every message whose last index is <= to (acknowledged). */
  freeLE(to: number): void {
    while (this.count > 0 && this.buf[this.start] <= to) {
      this.start = (this.start + 1) % this.size;
      this.count--;
    }
    if (this.count === 0) this.start = 0;
  }

  freeFirstOne(): void {
    if (this.count === 0) return;
    this.start = (this.start + 1) % this.size;
    this.count--;
  }

  full(): boolean {
    return this.count === this.size;
  }

  reset(): void {
    this.count = 0;
    this.start = 0;
  }
}

/**
 * The leader's view of one member's replication (thesis §3.5, etcd's tracker/progress.go).
 * Probe: one append at a time until the match point is found. Replicate: optimistic,
 * pipelined within the inflight window. Snapshot: waiting for an InstallSnapshot to land.
 */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = ProgressState.Probe;
  pendingSnapshot = 0;
  /** Heard from within the current election timeout (check-quorum). */
  recentActive = false;
  /** Probe state: an append is outstanding, wait for a reply before the next. */
  probeSent = false;
  /** The highest commit index sent to this member (see Raft.broadcastCommit). */
  sentCommit = 0;
  /**
   * The last entry this member proposed through the leader (a forwarded proposal), until the
   * member is sent a commit index that covers it; 0 when none waits (see Raft.tellProposers).
   */
  awaitedCommit = 0;
  readonly inflights: Inflights;

  constructor(next: number, maxInflight: number, public isLearner: boolean) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapIndex: number): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapIndex;
  }

  /** An acknowledgement up to n; false if it is stale. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /** Records that entries up to `last` were sent (or that an empty probe was). */
  sentEntries(last: number | null): void {
    if (this.state === ProgressState.Replicate) {
      if (last !== null) {
        this.next = last + 1;
        this.inflights.add(last);
      }
    } else if (this.state === ProgressState.Probe) {
      this.probeSent = true;
    }
  }

  /**
   * A rejection of the append whose previous index was `rejected`; `matchHint` is the
   * follower's best guess of where the logs agree. False if the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.probeSent;
      case ProgressState.Replicate:
        return this.inflights.full();
      case ProgressState.Snapshot:
        return true;
    }
  }

  view(): PeerProgress {
    return {
      match: this.match,
      next: this.next,
      state: this.state,
      recentActive: this.recentActive,
      inflight: this.inflights.count,
      pendingSnapshot: this.pendingSnapshot,
      isLearner: this.isLearner,
    };
  }
}
