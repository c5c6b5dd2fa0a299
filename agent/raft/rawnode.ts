import { ConfChange, ConfState, HardState, Message, NodeId, Ready, Rng, SoftState, Storage } from './types';

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
  /** Ticks without hearing from a leader before a follower campaigns; randomized in [electionTick, 2*electionTick). */
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
 * The consensus core, driven by its owner (the agent loop or the simulator). Not thread-safe
 * by design: one driver calls it from one place. See Ready in types.ts for the driving contract.
 */
export class RawNode {
  constructor(_cfg: RaftConfig) {
    throw new Error('not implemented');
  }
  get id(): NodeId {
    throw new Error('not implemented');
  }
  /** Advance logical time by one tick. */
  tick(): void {}
  /** Campaign now (as if the election timeout elapsed). */
  campaign(): void {}
  /**
   * Propose an application command. On the leader the entry is appended at once and its
   * index and term are returned; on a follower it is forwarded to the leader and null is
   * returned. Throws ProposalDroppedError when there is no leader or a transfer is under way.
   */
  propose(_data: Uint8Array): { index: number; term: number } | null {
    return null;
  }
  /** Propose a membership change; same return as propose. Throws if another change is pending or it is invalid. */
  proposeConfChange(_cc: ConfChange): { index: number; term: number } | null {
    return null;
  }
  /** Feed a message received from a peer. */
  step(_m: Message): void {}
  /** Request a linearizable read; a ReadState with the same context appears in a later Ready. */
  readIndex(_context: Uint8Array): void {}
  /** Ask the leader (this node or, forwarded, the current one) to hand leadership to target. */
  transferLeadership(_target: NodeId): void {}
  reportUnreachable(_id: NodeId): void {}
  reportSnapshot(_id: NodeId, _ok: boolean): void {}
  hasReady(): boolean {
    return false;
  }
  ready(): Ready {
    throw new Error('not implemented');
  }
  advance(_rd: Ready): void {}
  status(): Status {
    throw new Error('not implemented');
  }
}

/**
 * The log a brand-new cluster starts from: one AddVoter entry per initial voter, in term 1,
 * all committed. Every initial member writes the same entries, so their logs match; a node
 * that joins later receives them by replication (or a snapshot) and learns the membership.
 */
export function bootstrapLog(_voters: NodeId[]): { entries: import('./types').Entry[]; hardState: HardState } {
  throw new Error('not implemented');
}
