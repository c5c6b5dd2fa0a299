import { encodeConfChange } from './confchange';
import { Raft } from './raft';
import {
  ConfChange,
  ConfChangeType,
  ConfState,
  Entry,
  EntryType,
  HardState,
  Message,
  MessageType,
  NONE,
  NodeId,
  Ready,
  Rng,
  SoftState,
  Storage,
  emptyMessage,
  isLocalMessage,
} from './types';

export interface RaftLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

export interface RaftConfig {
  id: NodeId;
  storage: Storage;
  /** Seeded randomness (election timeout jitter). */
  rng: Rng;
  /** Ticks without hearing from a leader before a follower campaigns; randomized in [electionTick, 1.5*electionTick). */
  electionTick: number;
  /** Ticks between leader heartbeats; must be < electionTick. */
  heartbeatTick: number;
  /** Last index the state machine applied before this restart; default: the snapshot's index. */
  applied?: number;
  /** Bytes of entry data per App message (at least one entry is always sent). Default 1 MiB. */
  maxSizePerMsg?: number;
  /** App messages in flight per follower before the leader waits for acknowledgements. Default 256. */
  maxInflightMsgs?: number;
  /** Bytes of committed entries handed out per Ready. Default 64 MiB. */
  maxCommittedSizePerReady?: number;
  /** Pre-vote (thesis §9.6). Default true. */
  preVote?: boolean;
  /** A leader steps down when it has not heard from a quorum within an election timeout. Default true. */
  checkQuorum?: boolean;
  logger?: RaftLogger;
}

export enum ProgressState {
  Probe = 'probe',
  Replicate = 'replicate',
  Snapshot = 'snapshot',
}

export interface PeerProgress {
  match: number;
  next: number;
  state: ProgressState;
  recentActive: boolean;
  inflight: number;
  pendingSnapshot: number;
  isLearner: boolean;
}

export interface Status {
  id: NodeId;
  hardState: HardState;
  softState: SoftState;
  applied: number;
  lastIndex: number;
  firstIndex: number;
  leadTransferee: NodeId;
  config: ConfState;
  /** Per-member replication progress; only on the leader. */
  progress: Map<NodeId, PeerProgress> | null;
}

/** Thrown by propose/proposeConfChange/transferLeadership when the request cannot be taken. */
export class ProposalDroppedError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'ProposalDroppedError';
  }
}

/**
 * The consensus core, driven by its owner (the agent loop or the simulator). Single-threaded
 * by design: one driver calls it from one place. The driving contract is documented on
 * Ready in types.ts: between ready() and advance() the driver may keep calling step(),
 * tick() and propose(), but not ready().
 */
export class RawNode {
  private readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  private readyInFlight = false;

  constructor(cfg: RaftConfig) {
    this.raft = new Raft(cfg);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
  }

  get id(): NodeId {
    return this.raft.id;
  }

  /** Advance logical time by one tick. */
  tick(): void {
    this.raft.tick();
  }

  /** A follower forgets its leader and its lease (see Raft.forgetLeader). */
  forgetLeader(): void {
    this.raft.forgetLeader();
  }

  /** Changes the election and heartbeat timeouts, in ticks (a configuration reload). */
  setTimeouts(electionTick: number, heartbeatTick: number): void {
    this.raft.setTimeouts(electionTick, heartbeatTick);
  }

  /** Campaign now (as if the election timeout elapsed). */
  campaign(): void {
    this.raft.step(emptyMessage(MessageType.Hup, this.raft.id, this.raft.id));
  }

  /**
   * Propose an application command. On the leader the entry is appended at once and its
   * index and term are returned; on a follower it is forwarded to the leader and null is
   * returned (the caller learns the outcome by watching committed entries). Throws
   * ProposalDroppedError when there is no leader or a transfer is under way.
   */
  propose(data: Uint8Array): { index: number; term: number } | null {
    return this.proposeEntry(EntryType.Normal, data);
  }

  /** Propose a membership change; same return as propose. Throws if another change is pending or it is invalid. */
  proposeConfChange(cc: ConfChange): { index: number; term: number } | null {
    return this.proposeEntry(EntryType.ConfChange, encodeConfChange(cc));
  }

  private proposeEntry(type: EntryType, data: Uint8Array): { index: number; term: number } | null {
    const m = emptyMessage(MessageType.Prop, NONE, NONE);
    const entry: Entry = { term: 0, index: 0, type, data };
    m.entries = [entry];
    const before = this.raft.raftLog.lastIndex();
    const dropped = this.raft.step(m);
    if (dropped !== null) throw new ProposalDroppedError(dropped);
    const after = this.raft.raftLog.lastIndex();
    if (after > before && this.raft.lead === this.raft.id) return { index: after, term: this.raft.term };
    return null;
  }

  /** Feed a message received from a peer. */
  step(m: Message): void {
    if (isLocalMessage(m.type)) throw new Error(`cannot step local message ${MessageType[m.type]} from the network`);
    this.raft.step(m);
  }

  /**
   * Request a linearizable read; a ReadState with the same context appears in a later Ready
   * (on this node, also when the leader is elsewhere). Contexts must be unique cluster-wide
   * (include the node id). Throws ProposalDroppedError when no leader is known.
   */
  readIndex(context: Uint8Array): void {
    const m = emptyMessage(MessageType.ReadIndex, NONE, NONE);
    m.context = context;
    const dropped = this.raft.step(m);
    if (dropped !== null) throw new ProposalDroppedError(dropped);
  }

  /** Ask the leader (this node or, forwarded, the current one) to hand leadership to target. */
  transferLeadership(target: NodeId): void {
    const m = emptyMessage(MessageType.TransferLeader, this.raft.id, target);
    const dropped = this.raft.step(m);
    if (dropped !== null) throw new ProposalDroppedError(dropped);
  }

  /** The transport could not deliver to `id`: slow replication to it down to probing. */
  reportUnreachable(id: NodeId): void {
    this.raft.step(emptyMessage(MessageType.Unreachable, this.raft.id, id));
  }

  /** A snapshot sent to `id` was delivered (ok) or failed. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    const m = emptyMessage(MessageType.SnapStatus, this.raft.id, id);
    m.reject = !ok;
    this.raft.step(m);
  }

  /** Whether a follower has not yet been told the leader's commit index; see broadcastCommit. */
  commitBroadcastPending(): boolean {
    return this.raft.commitBroadcastPending();
  }

  /**
   * Sends the current commit index to followers that lack it. A leader does not broadcast
   * each commit advance: the next append or heartbeat carries it. Call this shortly after
   * a Ready in which commitBroadcastPending() turned true, so that followers apply (and
   * serve reads) promptly once writes stop.
   */
  broadcastCommit(): void {
    this.raft.broadcastCommit();
  }

  hasReady(): boolean {
    const r = this.raft;
    if (r.needBroadcast && r.lead === r.id) return true;
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    if (r.raftLog.unstable.snapshot !== null || r.raftLog.unstable.entries.length > 0) return true;
    if (r.raftLog.hasNextCommittedEnts()) return true;
    const ss = r.softState();
    if (ss.lead !== this.prevSoftState.lead || ss.role !== this.prevSoftState.role) return true;
    const hs = r.hardState();
    return !hardStateEqual(hs, this.prevHardState);
  }

  ready(): Ready {
    if (this.readyInFlight) throw new Error('ready() called again before advance()');
    const r = this.raft;
    r.flushBroadcast();
    const ss = r.softState();
    const hs = r.hardState();
    const softChanged = ss.lead !== this.prevSoftState.lead || ss.role !== this.prevSoftState.role;
    const hardChanged = !hardStateEqual(hs, this.prevHardState);
    const entries = r.raftLog.unstableEntries().slice();
    const rd: Ready = {
      softState: softChanged ? ss : null,
      hardState: hardChanged ? hs : null,
      entries,
      snapshot: r.raftLog.unstable.snapshot,
      committedEntries: r.raftLog.nextCommittedEnts(),
      messages: r.msgs,
      readStates: r.readStates,
      mustSync:
        entries.length > 0 || hs.term !== this.prevHardState.term || hs.vote !== this.prevHardState.vote,
    };
    r.msgs = [];
    r.readStates = [];
    if (softChanged) this.prevSoftState = ss;
    if (hardChanged) this.prevHardState = hs;
    this.readyInFlight = true;
    return rd;
  }

  /** The driver has persisted, sent and applied everything in rd. */
  advance(rd: Ready): void {
    const log = this.raft.raftLog;
    if (rd.snapshot) {
      log.unstable.stableSnapTo(rd.snapshot.metadata.index);
      if (rd.snapshot.metadata.index > log.applied) log.applied = rd.snapshot.metadata.index;
    }
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1];
      log.unstable.stableTo(last.index, last.term);
    }
    if (rd.committedEntries.length > 0) {
      log.appliedTo(rd.committedEntries[rd.committedEntries.length - 1].index);
    }
    this.raft.onStable();
    this.readyInFlight = false;
  }

  /**
   * Entries in the log beyond the commit index: what a leader has accepted and not yet
   * replicated to a quorum. status() without its copies, for the write path.
   */
  uncommittedEntries(): number {
    const log = this.raft.raftLog;
    return log.lastIndex() - log.committed;
  }

  status(): Status {
    const r = this.raft;
    return {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.raftLog.applied,
      lastIndex: r.raftLog.lastIndex(),
      firstIndex: r.raftLog.firstIndex(),
      leadTransferee: r.leadTransferee,
      config: { voters: [...r.conf.voters], learners: [...r.conf.learners] },
      progress: r.lead === r.id ? r.progressView() : null,
    };
  }
}

function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/**
 * The log a brand-new cluster starts from: one AddVoter entry per initial voter, in term 1,
 * all committed. Every initial member writes the same entries, so their logs match; a node
 * that joins later receives them by replication (or a snapshot) and learns the membership.
 */
export function bootstrapLog(voters: NodeId[]): { entries: Entry[]; hardState: HardState } {
  if (voters.length === 0) throw new Error('a cluster needs at least one voter');
  const ids = [...new Set(voters)].sort((a, b) => a - b);
  if (ids.length !== voters.length) throw new Error(`duplicate node id in initial voters ${voters.join(',')}`);
  const entries = ids.map((id, i) => ({
    term: 1,
    index: i + 1,
    type: EntryType.ConfChange,
    data: encodeConfChange({ type: ConfChangeType.AddVoter, nodeId: id, context: new Uint8Array(0) }),
  }));
  return { entries, hardState: { term: 1, vote: NONE, commit: entries.length } };
}
