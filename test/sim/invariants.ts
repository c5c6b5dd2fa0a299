import { Entry, HardState, Message, MessageType, NodeId, SnapshotMetadata, StateRole } from '../../agent/raft/types';
import { entryHash } from './kv';

/**
 * Raft's safety properties (Raft paper Figure 3, thesis §3.6), checked incrementally on the
 * facts a cluster produces: every persisted entry and hard state, every role change, every
 * applied entry, every served read. Each fact is checked against global registries when it
 * happens, so a whole history is verified at a cost proportional to its length — cheap
 * enough to run on every step of every simulated cluster.
 *
 * The checker trusts nothing of the core: it sees only what a driver following the Ready
 * contract sees (and the node's durable log, read through LogView).
 */

/** The parts of a node's durable log the checker reads (MemoryStorage is one). */
export interface LogView {
  firstIndex(): number;
  lastIndex(): number;
  /** Term at i, for firstIndex()-1 <= i <= lastIndex(); throws otherwise. */
  term(i: number): number;
}

export class InvariantViolation extends Error {
  constructor(
    readonly invariant: string,
    detail: string,
  ) {
    super(`[${invariant}] ${detail}`);
    this.name = 'InvariantViolation';
  }
}

/** Terms stay below this, so (index, term) packs into one exact double. */
const TERM_SPACE = 2 ** 21;
const UNKNOWN = -1;

interface NodeTrack {
  log: LogView;
  up: boolean;
  /** Last hard state persisted (survives crashes). */
  durable: HardState;
  /** Commit index as the running node last reported it; reset from `durable` on restart. */
  commit: number;
  /** Every index <= checkedCommit of this node's log was registered as committed. */
  checkedCommit: number;
  /** The term this node currently leads, or 0. */
  leaderTerm: number;
}

interface ReadRecord {
  node: NodeId;
  key: number;
  /** Highest commit index known anywhere when the read was issued. */
  minIndex: number;
}

/** A running state machine as a read sees it. */
export interface ReadableState {
  applied: number;
  get(key: number): number;
}

export class SafetyChecker {
  private readonly nodes = new Map<NodeId, NodeTrack>();
  /** (1) term -> the node that was leader in it. */
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** (2) (index, term) -> content hash, and the term of the entry before it. */
  private readonly entryAt = new Map<number, number>();
  private readonly prevTermAt = new Map<number, number>();
  /** (3) index -> term of the entry committed there, and the lowest term in which any node knew it committed. */
  private readonly committedTerm: number[] = [0];
  private readonly committedBy: number[] = [0];
  /** Highest commit index known anywhere so far. */
  maxCommit = 0;
  /** (4) index -> hash chain of the applied prefix and the applied entry's term. */
  private readonly chainAt: number[] = [0];
  private readonly appliedTermAt: number[] = [0];
  /** (6) per key, the indexes (ascending) and ids of the writes in the applied history. */
  private readonly writeIndex: number[][] = [];
  private readonly writeId: number[][] = [];
  private readonly reads = new Map<number, ReadRecord>();
  readsServed = 0;

  /** How many terms had a leader so far. */
  get leaderTerms(): number {
    return this.leaderOfTerm.size;
  }

  constructor(keys: number) {
    for (let k = 0; k < keys; k++) {
      this.writeIndex.push([]);
      this.writeId.push([]);
    }
  }

  // ---- node lifecycle -------------------------------------------------------------------

  /** A node exists (with an empty or bootstrapped log it is about to persist). */
  nodeCreated(id: NodeId, log: LogView): void {
    this.nodes.set(id, {
      log,
      up: false,
      durable: { term: 0, vote: 0, commit: 0 },
      commit: 0,
      checkedCommit: 0,
      leaderTerm: 0,
    });
  }

  /** The node (re)starts from its durable state. */
  nodeStarted(id: NodeId): void {
    const t = this.track(id);
    t.up = true;
    t.commit = t.durable.commit;
    t.leaderTerm = 0;
  }

  /** The node crashed or was shut down: everything volatile about it is gone. */
  nodeStopped(id: NodeId): void {
    const t = this.track(id);
    t.up = false;
    t.leaderTerm = 0;
  }

  // ---- (2) Log Matching -----------------------------------------------------------------

  /**
   * Called before `entries` are appended to the node's durable log. A node must never
   * overwrite an entry it knows is committed, and terms in a log never decrease.
   */
  entriesPersisting(id: NodeId, entries: Entry[]): void {
    const t = this.track(id);
    const log = t.log;
    const first = log.firstIndex();
    const last = log.lastIndex();
    if (entries[0].index > last + 1) {
      throw new InvariantViolation('log-gap', `n${id} appends at ${entries[0].index} but its log ends at ${last}`);
    }
    const commit = Math.max(t.commit, t.durable.commit);
    let prevTerm = entries[0].index - 1 >= first - 1 ? log.term(entries[0].index - 1) : UNKNOWN;
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k];
      if (k > 0 && e.index !== entries[k - 1].index + 1) {
        throw new InvariantViolation('log-gap', `n${id} appends non-contiguous entries ${entries[k - 1].index}, ${e.index}`);
      }
      if (prevTerm !== UNKNOWN && e.term < prevTerm) {
        throw new InvariantViolation('log-term-order', `n${id} appends (${e.index}, t${e.term}) after an entry of term ${prevTerm}`);
      }
      if (e.index <= commit && e.index >= first && e.index <= last && log.term(e.index) !== e.term) {
        throw new InvariantViolation(
          'committed-overwrite',
          `n${id} overwrites committed entry (${e.index}, t${log.term(e.index)}) with term ${e.term} (its commit is ${commit})`,
        );
      }
      prevTerm = e.term;
    }
  }

  /**
   * Called after the append. Every (index, term) ever stored anywhere maps to one content
   * and one predecessor term: by induction on the index, two logs holding the same
   * (index, term) are then identical up to it (Raft's Log Matching property).
   */
  entriesPersisted(id: NodeId, entries: Entry[]): void {
    const log = this.track(id).log;
    const first = log.firstIndex();
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k];
      if (e.index < first) continue; // already covered by this node's snapshot
      if (e.term >= TERM_SPACE) throw new InvariantViolation('term-range', `term ${e.term} is beyond the checker's range`);
      const key = e.index * TERM_SPACE + e.term;
      const prev = k > 0 ? entries[k - 1].term : e.index - 1 >= first - 1 ? log.term(e.index - 1) : UNKNOWN;
      const h = entryHash(e);
      const known = this.entryAt.get(key);
      if (known === undefined) {
        this.entryAt.set(key, h);
        this.prevTermAt.set(key, prev);
        continue;
      }
      if (known !== h) {
        throw new InvariantViolation('log-matching', `n${id} stores an entry (${e.index}, t${e.term}) whose content differs from another node's`);
      }
      const knownPrev = this.prevTermAt.get(key)!;
      if (knownPrev === UNKNOWN) this.prevTermAt.set(key, prev);
      else if (prev !== UNKNOWN && prev !== knownPrev) {
        throw new InvariantViolation(
          'log-matching',
          `n${id} stores (${e.index}, t${e.term}) after an entry of term ${prev}, another node after term ${knownPrev}`,
        );
      }
    }
  }

  // ---- (5) hard state, and commits feeding (3) ------------------------------------------

  /** Called after the hard state is persisted (the node's log already holds the Ready's entries). */
  hardStatePersisted(id: NodeId, hs: HardState): void {
    const t = this.track(id);
    const prev = t.durable;
    if (hs.term < prev.term) throw new InvariantViolation('term-regressed', `n${id} persists term ${hs.term} after term ${prev.term}`);
    if (hs.term === prev.term && prev.vote !== 0 && hs.vote !== prev.vote) {
      throw new InvariantViolation('double-vote', `n${id} voted for n${prev.vote} and then n${hs.vote} in term ${hs.term}`);
    }
    if (hs.commit < prev.commit) {
      throw new InvariantViolation('commit-decreased', `n${id} persists commit ${hs.commit} after durable commit ${prev.commit}`);
    }
    this.commitReported(id, hs.commit, hs.term);
    t.durable = { term: hs.term, vote: hs.vote, commit: hs.commit };
  }

  /** The running node reports commit index `commit` while at `term` (from a hard state or status()). */
  commitReported(id: NodeId, commit: number, term: number): void {
    const t = this.track(id);
    if (commit < t.commit) {
      throw new InvariantViolation('commit-decreased', `n${id} commit index went from ${t.commit} to ${commit} while up`);
    }
    t.commit = commit;
    if (commit <= t.checkedCommit) return;
    const log = t.log;
    if (commit > log.lastIndex()) {
      throw new InvariantViolation('commit-beyond-log', `n${id} commits ${commit} but its durable log ends at ${log.lastIndex()}`);
    }
    const first = log.firstIndex();
    for (let i = Math.max(t.checkedCommit + 1, first); i <= commit; i++) this.registerCommitted(id, i, log.term(i), term);
    t.checkedCommit = commit;
    if (commit > this.maxCommit) this.maxCommit = commit;
    // (3) Entries committed by term `term` must be in the log of every leader of a later term,
    // including leaders elected before this node learned of the commit.
    for (const [lid, lt] of this.nodes) {
      if (lt.leaderTerm > term) this.requireCommitted(lid, lt, commit, `leader of term ${lt.leaderTerm}`);
    }
  }

  private registerCommitted(id: NodeId, i: number, term: number, knownInTerm: number): void {
    const ct = this.committedTerm[i];
    if (ct === undefined) {
      this.committedTerm[i] = term;
      this.committedBy[i] = knownInTerm;
      return;
    }
    if (ct !== term) {
      throw new InvariantViolation('commit-conflict', `n${id} commits (${i}, t${term}) but (${i}, t${ct}) was committed before`);
    }
    if (knownInTerm < this.committedBy[i]) this.committedBy[i] = knownInTerm;
  }

  /** The committed entry at index i must be in node `id`'s log (or under its snapshot). */
  private requireCommitted(id: NodeId, t: NodeTrack, i: number, who: string): void {
    const log = t.log;
    if (i < log.firstIndex() - 1) return; // compacted: its snapshot was checked as committed
    if (i > log.lastIndex()) {
      throw new InvariantViolation(
        'leader-completeness',
        `n${id} (${who}) lacks committed entry (${i}, t${this.committedTerm[i]}): its log ends at ${log.lastIndex()}`,
      );
    }
    const have = log.term(i);
    if (have !== this.committedTerm[i]) {
      throw new InvariantViolation(
        'leader-completeness',
        `n${id} (${who}) has (${i}, t${have}) where (${i}, t${this.committedTerm[i]}) is committed`,
      );
    }
  }

  /** A node installs a snapshot: it must describe a committed prefix. */
  snapshotPersisted(id: NodeId, meta: SnapshotMetadata): void {
    const t = this.track(id);
    const ct = this.committedTerm[meta.index];
    if (ct !== meta.term) {
      throw new InvariantViolation(
        'snapshot-uncommitted',
        `n${id} installs a snapshot at (${meta.index}, t${meta.term}) but ${ct === undefined ? 'that index is not known committed' : `(${meta.index}, t${ct}) is committed`}`,
      );
    }
    if (meta.index > t.checkedCommit) t.checkedCommit = meta.index;
  }

  // ---- (1) Election Safety and (3) Leader Completeness ----------------------------------

  /** Called whenever a node's role, leader or term may have changed (its log is up to date). */
  roleObserved(id: NodeId, role: StateRole, lead: NodeId, term: number): void {
    const t = this.track(id);
    if (role !== StateRole.Leader) {
      t.leaderTerm = 0;
      if (role === StateRole.Follower && lead !== 0) {
        const l = this.leaderOfTerm.get(term);
        if (l !== lead) {
          throw new InvariantViolation('follows-non-leader', `n${id} follows n${lead} in term ${term}, whose leader is ${l === undefined ? 'unknown' : `n${l}`}`);
        }
      }
      return;
    }
    if (t.leaderTerm === term) return;
    const other = this.leaderOfTerm.get(term);
    if (other !== undefined && other !== id) {
      throw new InvariantViolation('election-safety', `n${id} and n${other} are both leaders of term ${term}`);
    }
    this.leaderOfTerm.set(term, id);
    t.leaderTerm = term;
    // The newest entry committed in a term before `term` must be in the new leader's log; by
    // Log Matching (checked above) the whole committed prefix up to it then is too.
    const m = this.lastCommittedBefore(term);
    if (m > 0) this.requireCommitted(id, t, m, `new leader of term ${term}`);
  }

  /**
   * The highest index known committed in a term below `term`. committedBy is non-decreasing in
   * the index (a node that knows index j committed knows every i < j, at a term no higher),
   * so binary search applies.
   */
  private lastCommittedBefore(term: number): number {
    let lo = 0;
    let hi = this.maxCommit;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      const by = this.committedBy[mid];
      if (by !== undefined && by < term) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  // ---- (4) State Machine Safety ---------------------------------------------------------

  /** Before a node applies committed entry e, whose application makes its chain `chainAfter`. */
  entryApplied(id: NodeId, e: Entry, chainAfter: number, write: { id: number; key: number } | null): void {
    const t = this.track(id);
    if (e.index > t.commit) {
      throw new InvariantViolation('applied-uncommitted', `n${id} applies ${e.index} but its commit index is ${t.commit}`);
    }
    const ct = this.committedTerm[e.index];
    if (ct !== e.term) {
      throw new InvariantViolation('applied-uncommitted', `n${id} applies (${e.index}, t${e.term}) but the committed entry there has term ${ct}`);
    }
    const known = this.chainAt[e.index];
    if (known === undefined) {
      this.chainAt[e.index] = chainAfter;
      this.appliedTermAt[e.index] = e.term;
      if (write !== null && write.key < this.writeIndex.length) {
        this.writeIndex[write.key].push(e.index);
        this.writeId[write.key].push(write.id);
      }
      return;
    }
    if (known !== chainAfter) {
      throw new InvariantViolation(
        'state-machine-safety',
        `n${id} applies (${e.index}, t${e.term}) after a history that differs from another node's, which applied (${e.index}, t${this.appliedTermAt[e.index]})`,
      );
    }
  }

  /** A node's state machine is replaced by a snapshot image of index `index`. */
  snapshotRestored(id: NodeId, index: number, chain: number): void {
    if (index === 0) return;
    const known = this.chainAt[index];
    if (known !== chain) {
      throw new InvariantViolation(
        'state-machine-safety',
        `n${id} restores a snapshot at ${index} whose applied history ${known === undefined ? 'no node applied' : 'differs from what other nodes applied'}`,
      );
    }
  }

  // ---- (6) linearizable reads -----------------------------------------------------------

  readIssued(readId: number, node: NodeId, key: number): void {
    this.reads.set(readId, { node, key, minIndex: this.maxCommit });
  }

  /** Node `id` serves read `readId` at read index `index` from state machine `sm` (sm.applied >= index). */
  readServed(id: NodeId, readId: number, index: number, sm: ReadableState): void {
    const r = this.reads.get(readId);
    if (r === undefined || r.node !== id) {
      throw new InvariantViolation('read-unknown', `n${id} got a read state for request ${readId}, which it never issued`);
    }
    if (index < r.minIndex) {
      throw new InvariantViolation(
        'stale-read',
        `n${id} serves read ${readId} at index ${index}, but index ${r.minIndex} was already committed when it was issued`,
      );
    }
    const got = sm.get(r.key);
    const want = this.valueAt(r.key, sm.applied);
    if (got !== want) {
      throw new InvariantViolation(
        'stale-read',
        `n${id} read key ${r.key} = write ${got} at applied ${sm.applied}; the committed history has write ${want} there`,
      );
    }
    this.readsServed++;
  }

  /** Value of `key` after applying the agreed history up to `applied`. */
  private valueAt(key: number, applied: number): number {
    const idx = this.writeIndex[key];
    let lo = 0;
    let hi = idx.length; // first write at an index > applied
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (idx[mid] <= applied) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? 0 : this.writeId[key][lo - 1];
  }

  // ---- promises carried by messages -----------------------------------------------------

  /**
   * A message is leaving node `id`. Its promises must already be durable (Raft §5.1, Figure 2:
   * persistent state is "updated on stable storage before responding to RPCs"; the Ready
   * contract's "persist before send"):
   * - its term: a node must not act in a term it could forget in a crash. Restarted in an
   *   older term, it could lead the same term twice, or vote twice in it. Pre-votes are the
   *   exception: they name the term their sender would campaign in, without entering it;
   * - a granted vote is recorded in the hard state;
   * - an acknowledged entry is in the log.
   * A reply of an earlier term than the durable one is stale, not a broken promise: the agent
   * keeps stepping the core while it writes, so one batch can hold replies of several terms
   * (a vote in term 7, then one in term 8). A node durably in a later term never votes in the
   * earlier one again, and it drops entries of an earlier term only when a later term's
   * leader overwrites them, which no quorum would have elected had they been committed.
   */
  messageSent(id: NodeId, m: Message): void {
    // Forwarded requests keep naming their originator (a TransferLeader, its transferee).
    if (m.from !== id && m.type !== MessageType.TransferLeader && m.type !== MessageType.Prop && m.type !== MessageType.ReadIndex) {
      throw new InvariantViolation('message-from', `n${id} sends a message claiming to be from n${m.from}`);
    }
    const t = this.track(id);
    const durable = t.durable;
    if (m.type === MessageType.VoteResp && !m.reject && m.term >= durable.term && (durable.term !== m.term || durable.vote !== m.to)) {
      throw new InvariantViolation(
        'vote-not-durable',
        `n${id} grants its vote to n${m.to} in term ${m.term} but its durable state is term ${durable.term}, vote n${durable.vote}`,
      );
    }
    if (m.type === MessageType.AppResp && !m.reject && m.term >= durable.term && m.index > t.log.lastIndex()) {
      throw new InvariantViolation('ack-not-durable', `n${id} acknowledges index ${m.index} but its durable log ends at ${t.log.lastIndex()}`);
    }
    if (m.term > durable.term && m.type !== MessageType.PreVote && m.type !== MessageType.PreVoteResp) {
      throw new InvariantViolation(
        'term-not-durable',
        `n${id} sends ${MessageType[m.type]} of term ${m.term} to n${m.to} but its durable term is ${durable.term}`,
      );
    }
  }

  private track(id: NodeId): NodeTrack {
    const t = this.nodes.get(id);
    if (t === undefined) throw new Error(`checker: unknown node ${id}`);
    return t;
  }
}
