/**
 * Types shared by the consensus core and everything that drives it (storage, transport,
 * the agent loop, the simulator). The core imports nothing of the project but this file
 * and its own siblings.
 *
 * The shape follows etcd's raft: a flat Message, a log of Entries, a HardState that must be
 * durable before any message that depends on it leaves the node, and a Ready batch that
 * tells the driver what to persist, send and apply.
 */

/** Node ids are positive integers; 0 means "none". */
export type NodeId = number;
export const NONE: NodeId = 0;

export enum EntryType {
  /** An application command (or an empty entry a new leader appends, data of length 0). */
  Normal = 0,
  /** A membership change; `data` is an encoded ConfChange (see confchange.ts). */
  ConfChange = 1,
}

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

/** What must survive a crash before anything that depends on it is sent (Raft §5, Figure 2). */
export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

/** Membership at some point of the log. Voters count for quorums; learners only receive the log. */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

/** The log entry (index and term) that removed a node from the cluster. */
export interface Removal {
  index: number;
  term: number;
}

export interface SnapshotMetadata {
  index: number;
  term: number;
  confState: ConfState;
}

export interface Snapshot {
  metadata: SnapshotMetadata;
  /** The state machine's image at metadata.index; opaque to the core. */
  data: Uint8Array;
}

export enum ConfChangeType {
  AddVoter = 0,
  AddLearner = 1,
  RemoveNode = 2,
}

/**
 * One membership change. Changes are applied one at a time (Raft thesis §4.1): a leader
 * refuses a new change while an earlier one is not yet applied. "Promote a learner" is
 * AddVoter of a node that is a learner. `context` is opaque to the core (the agent puts
 * the node's address there so every member learns how to reach it).
 */
export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  context: Uint8Array;
}

export enum MessageType {
  // Local messages: never sent over the wire, only stepped into a node by its driver.
  /** Start an election now. */
  Hup = 0,
  /** Leader: send heartbeats now. */
  Beat = 1,
  /** A proposal of `entries` (to the leader; a follower forwards it). */
  Prop = 2,

  // Peer messages.
  App = 3,
  AppResp = 4,
  Vote = 5,
  VoteResp = 6,
  PreVote = 7,
  PreVoteResp = 8,
  Snap = 9,
  Heartbeat = 10,
  HeartbeatResp = 11,
  /** A linearizable read request; `context` identifies it. Followers forward it to the leader. */
  ReadIndex = 12,
  ReadIndexResp = 13,
  /** Ask the leader to hand leadership to `from` (or, stepped locally, to the node named by `from`). */
  TransferLeader = 14,
  /** Leader to transfer target: campaign now, without pre-vote and ignoring leases. */
  TimeoutNow = 15,

  // Local feedback from the driver.
  /** The transport could not deliver to `from`; the leader slows down replication to it. */
  Unreachable = 16,
  /** A snapshot sent to `from` was delivered (reject=false) or failed (reject=true). */
  SnapStatus = 17,
}

/**
 * A flat message, as in etcd's raftpb.Message; which fields mean something depends on type.
 * - App: index/logTerm name the entry preceding `entries`; commit is the leader's commit.
 * - AppResp: index is the last index now matching (or, when reject, the index that was
 *   rejected); rejectHint/logTerm carry the follower's conflict hint for fast back-off.
 * - Vote/PreVote: index/logTerm are the candidate's last entry (the up-to-date check, §5.4.1).
 * - Heartbeat: commit is min(leader commit, follower match); context carries a ReadIndex round.
 * - ReadIndex/ReadIndexResp: context is the request id; index is the read index in the reply.
 */
export interface Message {
  type: MessageType;
  to: NodeId;
  from: NodeId;
  term: number;
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  rejectHint: number;
  snapshot: Snapshot | null;
  /** Opaque bytes: ReadIndex request ids, heartbeat read contexts, campaign kind. */
  context: Uint8Array | null;
}

export enum StateRole {
  Follower = 'follower',
  PreCandidate = 'pre-candidate',
  Candidate = 'candidate',
  Leader = 'leader',
}

/** Volatile state that the driver may want to display or react to; not persisted. */
export interface SoftState {
  lead: NodeId;
  role: StateRole;
}

/** A linearizable read: once the state machine has applied `index`, the read `context` may be served. */
export interface ReadState {
  index: number;
  context: Uint8Array;
}

/**
 * What the driver must do next, in this order (the contract of RawNode.ready()):
 *  1. persist `snapshot` (if any), then append `entries` to stable storage, then persist
 *     `hardState` (if any) — fsync once if `mustSync`;
 *  2. only then send `messages` (a vote or an acknowledgement must never leave before the
 *     state it promises is durable);
 *  3. apply `snapshot` to the state machine (if any), then `committedEntries` in order;
 *  4. serve `readStates` once the applied index reaches each one's index;
 *  5. call advance(ready).
 */
export interface Ready {
  softState: SoftState | null;
  hardState: HardState | null;
  entries: Entry[];
  snapshot: Snapshot | null;
  committedEntries: Entry[];
  messages: Message[];
  readStates: ReadState[];
  mustSync: boolean;
}

/**
 * The durable log as the core reads it: everything the driver has persisted. The core never
 * writes it; the driver appends what ready() returns and compacts it after snapshots.
 * Mirrors etcd's raft.Storage and hashicorp/raft's LogStore + StableStore.
 */
export interface Storage {
  /** Hard state and membership as of the last restart. */
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries [lo, hi). Throws CompactedError if lo < firstIndex(). */
  entries(lo: number, hi: number, maxBytes?: number): Entry[];
  /** Term of the entry at i; i may be firstIndex()-1 (the snapshot's index). Throws CompactedError / UnavailableError. */
  term(i: number): number;
  /** Index of the first entry still in the log (snapshot index + 1). */
  firstIndex(): number;
  lastIndex(): number;
  snapshot(): Snapshot;
}

export class CompactedError extends Error {
  constructor(index: number, firstIndex: number) {
    super(`log index ${index} is compacted (first index is ${firstIndex})`);
    this.name = 'CompactedError';
  }
}

export class UnavailableError extends Error {
  constructor(index: number, lastIndex: number) {
    super(`log index ${index} is not available (last index is ${lastIndex})`);
    this.name = 'UnavailableError';
  }
}

/** A seeded source of randomness, handed to the core so it never calls Math.random. */
export interface Rng {
  /** Integer in [0, n). */
  intn(n: number): number;
}

export function emptyMessage(type: MessageType, to: NodeId, from: NodeId, term = 0): Message {
  return {
    type,
    to,
    from,
    term,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    snapshot: null,
    context: null,
  };
}

export function isLocalMessage(t: MessageType): boolean {
  return (
    t === MessageType.Hup ||
    t === MessageType.Beat ||
    t === MessageType.Unreachable ||
    t === MessageType.SnapStatus
  );
}

export function isResponseMessage(t: MessageType): boolean {
  return (
    t === MessageType.AppResp ||
    t === MessageType.VoteResp ||
    t === MessageType.PreVoteResp ||
    t === MessageType.HeartbeatResp ||
    t === MessageType.Unreachable
  );
}
