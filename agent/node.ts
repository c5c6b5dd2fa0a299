import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { randomInt } from 'node:crypto';
import { Command, Op, encodeProposal } from './fsm/commands';
import { ApplyResult, MemberContext, OpenImage, StateMachine, encodeMemberContext } from './fsm/state_machine';
import { AgentMetrics } from './http/metrics';
import { decodeConfChange, encodeConfChange } from './raft/confchange';
import { CommitBeyondLogError } from './raft/log';
import { PeerProgress, ProposalDroppedError, RawNode, Status, bootstrapLog } from './raft/rawnode';
import { SeededRng } from './raft/rng';
import {
  ConfChangeType,
  Entry,
  EntryType,
  Message,
  MessageType,
  NONE,
  NodeId,
  Ready,
  Removal,
  StateRole,
} from './raft/types';
import { DiskStorage, FsOps } from './storage';
import { PeerTransport, TlsFiles } from './transport';

export interface AgentOptions {
  nodeId: NodeId;
  clusterId: string;
  /** Where peers reach this node's Raft port, and where to listen. */
  raftHost: string;
  /** Where the Raft port listens when that is not raftHost (pgraft.listen_address); raftHost stays the address announced. */
  listenHost?: string;
  raftPort: number;
  /** host:port of this node's HTTP API, announced to the cluster so followers can forward to the leader. */
  apiAddress: string;
  dataDir: string;
  electionTimeoutMs: number;
  heartbeatIntervalMs: number;
  preVote: boolean;
  checkQuorum: boolean;
  snapshotInterval: number;
  maxLogEntries: number;
  compactionThreshold: number;
  batchSize: number;
  maxMessageBytes: number;
  maxInflightMessages: number;
  logSegmentBytes?: number;
  tls?: TlsFiles;
  /** Start a new cluster with these voters (must include this node) when the data directory is empty. */
  bootstrap?: { id: NodeId; raftAddress: string; apiAddress?: string }[];
  /** How long a proposal or read may wait before it fails. */
  requestTimeoutMs?: number;
  /**
   * Most log entries the leader holds beyond the commit index before it refuses new writes,
   * so a leader cut off from its quorum cannot grow without bound. Default 100000.
   */
  maxUncommittedEntries?: number;
  logger: Logger;
  metrics?: AgentMetrics;
  /** The file operations storage uses; the real ones unless given (tests hold or fail them). */
  fs?: FsOps;
}

/** The agent's lifecycle, as pgraft_get_worker_state() reports it. */
export type WorkerState = 'INITIALIZING' | 'RUNNING' | 'STOPPING' | 'STOPPED' | 'ERROR';

/** Raised when an operation must run on the leader; names the leader when one is known. */
export class NotLeaderError extends Error {
  constructor(
    readonly leaderId: NodeId,
    readonly leaderApiAddress: string,
    readonly leaderRaftAddress: string,
  ) {
    super(
      leaderId === NONE
        ? 'no leader is known at the moment (an election may be in progress); retry shortly'
        : `this node is not the leader; the leader is node ${leaderId}${leaderApiAddress ? ` (API ${leaderApiAddress})` : ''}`,
    );
    this.name = 'NotLeaderError';
  }
}

export class AgentError extends Error {
  constructor(
    message: string,
    readonly code: 'timeout' | 'invalid' | 'conflict' | 'unavailable' | 'failed' = 'failed',
  ) {
    super(message);
    this.name = 'AgentError';
  }
}

/**
 * The cluster does not take this node on its data: it was removed while it was away (a peer
 * refused it, naming the entry that removed it, which its log does not hold), or its log
 * lost entries it had acknowledged (the leader said them committed). It stops for good, and
 * its data directory keeps the reason (DiskStorage.recordFence).
 */
export class FencedError extends AgentError {
  constructor(message: string) {
    super(message, 'failed');
    this.name = 'FencedError';
  }
}

/** A proposal in the core, waiting to be applied. */
interface PendingProposal {
  /** Index and term the leader gave it; 0 while unknown (forwarded from a follower). */
  index: number;
  term: number;
  started: number;
  resolve(r: ApplyResult): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

interface QueuedProposal {
  seq: number;
  /** Fires when the proposal has waited requestTimeoutMs, queued or in the core. */
  timer: NodeJS.Timeout;
  data: Uint8Array;
  type: EntryType;
  started: number;
  resolve(r: ApplyResult): void;
  reject(e: Error): void;
}

interface PendingRead {
  resolve(): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
  index: number;
}

export interface Counters {
  messagesReceived: number;
  messagesSent: number;
  heartbeatsSent: number;
  electionsTriggered: number;
  proposalsCommitted: number;
  proposalsFailed: number;
  storageErrors: number;
  snapshotsTaken: number;
  snapshotsInstalled: number;
}

/** How long followers may go without hearing of a commit when no append carries it. */
const COMMIT_FLUSH_MS = 2;
/** How long to wait before proposing this node's API address again after a failed attempt. */
const ANNOUNCE_RETRY_MS = 1000;

/**
 * The core counts time in ticks; the agent ticks it ten times per heartbeat interval. Election
 * timeouts are then drawn, and leader leases expire, to a tenth of a heartbeat: with one tick
 * per heartbeat, a follower whose tick ran just before its peer's could still hold the old
 * leader's lease when the peer's timeout fired, refuse its pre-vote, and cost the cluster a
 * whole second election timeout after a silent leader failure.
 */
const TICKS_PER_HEARTBEAT = 10;

function coreTicks(electionTimeoutMs: number, heartbeatIntervalMs: number): { electionTick: number; heartbeatTick: number } {
  const tickMs = heartbeatIntervalMs / TICKS_PER_HEARTBEAT;
  return { electionTick: Math.max(2 * TICKS_PER_HEARTBEAT, Math.round(electionTimeoutMs / tickMs)), heartbeatTick: TICKS_PER_HEARTBEAT };
}

/**
 * One pgraft agent: the loop that drives the consensus core (Ready → persist → send → apply
 * → advance, see Ready in raft/types.ts), with the durable log, the peer transport and the
 * replicated state machine. The core decides; this class only performs I/O and keeps the
 * promises it made to callers.
 *
 * Batching happens here for free: while one batch is being written and fsynced, new
 * proposals and messages pile up in the core and leave together in the next Ready (group
 * commit, one append and one message per follower).
 */
export class Agent extends EventEmitter {
  readonly id: NodeId;
  readonly fsm = new StateMachine();
  readonly metrics: AgentMetrics;
  readonly counters: Counters = {
    messagesReceived: 0,
    messagesSent: 0,
    heartbeatsSent: 0,
    electionsTriggered: 0,
    proposalsCommitted: 0,
    proposalsFailed: 0,
    storageErrors: 0,
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
  };
  state: WorkerState = 'INITIALIZING';
  /** Why the agent is in ERROR. */
  failure: Error | null = null;
  lastContact = new Map<NodeId, number>();

  private raw!: RawNode;
  private storage!: DiskStorage;
  private transport!: PeerTransport;
  private readonly log: Logger;
  private readonly opts: AgentOptions;
  private tickTimer: NodeJS.Timeout | null = null;
  /** Sends followers the leader's commit index when no append has carried it (see flushCommitSoon). */
  private commitTimer: NodeJS.Timeout | null = null;
  private running = false;
  private loopScheduled = false;
  private readonly proposalQueue: QueuedProposal[] = [];
  /** Proposals handed to the core, by sequence number. */
  private readonly pending = new Map<number, PendingProposal>();
  /** Sequence number of the proposal the leader placed at each index (for membership changes and superseded writes). */
  private readonly bySlot = new Map<number, number>();
  /** Tells this process's proposals apart from a previous run's when the log is replayed. */
  private readonly epoch = randomInt(0, 2 ** 32);
  private nextSeq = 0;
  /** This node was in the configuration at the last check (see checkMembership). */
  private wasMember = false;
  /** Term and vote known to be on disk (early sends depend on them). */
  private durableTermVote = { term: 0, vote: 0 };
  /** When the Ready being processed was taken (0: none in flight). */
  private readyStartedAt = 0;
  private readonly waitingReads: PendingRead[] = [];
  private readonly issuedReads = new Map<string, PendingRead[]>();
  private readonly readyReads: PendingRead[] = [];
  private readCounter = 0;
  private lastSnapshotIndex = 0;
  /** A proposal recording this node's API address is in flight; and when to try again after a failure. */
  private announcing = false;
  private announceRetryAt = 0;
  /** Where the log's segment files were last compacted to (takeSnapshot). */
  private filesCompactedTo = 0;
  private snapshotInProgress = false;
  private readonly addresses = new Map<NodeId, MemberContext>();
  private lead: NodeId = NONE;
  private role: StateRole = StateRole.Follower;
  private requestTimeoutMs: number;
  private applyWaiters: { index: number; resolve(): void }[] = [];
  private loopIdle: Promise<void> = Promise.resolve();
  /** Entries up to here were applied in an earlier run; applying them again at start is no news. */
  private replayedUpTo = 0;
  /** The term in which this node last became leader. */
  private leaderTerm = 0;
  /** The last leader known, for "previous" in the log line of the next election. */
  private lastLeader: NodeId = NONE;

  private constructor(opts: AgentOptions) {
    super();
    this.opts = opts;
    this.id = opts.nodeId;
    this.log = opts.logger;
    this.metrics = opts.metrics ?? new AgentMetrics({ processMetrics: false });
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 5000;
  }

  static async start(opts: AgentOptions): Promise<Agent> {
    const a = new Agent(opts);
    await a.init();
    return a;
  }

  private async init(): Promise<void> {
    const o = this.opts;
    this.storage = await DiskStorage.open({ dataDir: o.dataDir, segmentBytes: o.logSegmentBytes, logger: messageFirst(this.log), fs: o.fs });
    const fence = await this.storage.fenceNote();
    if (fence !== null) {
      await this.storage.close();
      throw new FencedError(`the data directory ${o.dataDir} belongs to a node its cluster fenced off; the agent does not start on it. ${fence.trim()}`);
    }
    if (this.storage.lastIndex() === 0 && this.storage.snapshotMetadata().index === 0 && o.bootstrap) {
      await this.writeBootstrap(o.bootstrap);
    } else if (o.bootstrap && o.bootstrap.length > 0) {
      this.log.info({ dataDir: o.dataDir }, 'data directory already holds a cluster; bootstrap settings ignored');
    }

    // Rebuild the state machine from the last snapshot; the core re-delivers the committed
    // entries after it as committedEntries.
    const snap = this.storage.snapshot();
    this.fsm.restore(snap.data, snap.metadata.index, snap.metadata.confState);
    this.lastSnapshotIndex = snap.metadata.index;
    for (const m of this.fsm.memberList()) this.addresses.set(m.id, { raft: m.raftAddress, api: m.apiAddress });
    const first = this.storage.firstIndex();
    const last = this.storage.lastIndex();
    if (last >= first) this.learnAddresses(this.storage.entries(first, last + 1));

    this.raw = this.createRawNode(snap.metadata.index);
    const hs = this.storage.initialState().hardState;
    this.durableTermVote = { term: hs.term, vote: hs.vote };
    const conf = this.raw.status().config;
    this.wasMember = conf.voters.includes(this.id) || conf.learners.includes(this.id);
    this.replayedUpTo = this.raw.status().hardState.commit;

    this.transport = new PeerTransport({
      nodeId: o.nodeId,
      clusterId: o.clusterId,
      listenHost: o.listenHost ?? o.raftHost,
      advertiseHost: o.raftHost,
      listenPort: o.raftPort,
      tls: o.tls,
      logger: this.log,
      maxFrameBytes: Math.max(128 * 1024 * 1024, o.maxMessageBytes * 4),
      onMessage: (m) => this.onPeerMessage(m),
      // A node being added knows nobody yet: the leader's handshake tells it where to answer.
      onPeerIdentified: (peer, advertise) => {
        if (!this.addresses.has(peer)) this.learnMemberAddress(peer, advertise);
      },
      // The leader's connection closed: it probably crashed. Followers drop its lease so a
      // successor can be elected before the election timeout (pre-vote still needs a majority).
      onPeerDisconnected: (peer) => {
        if (!this.running || peer !== this.lead || this.role !== StateRole.Follower) return;
        this.raw.forgetLeader();
        this.kick();
      },
      onUnreachable: (peer) => {
        this.raw.reportUnreachable(peer);
        this.kick();
      },
      onSnapshotStatus: (peer, ok) => {
        this.raw.reportSnapshot(peer, ok);
        this.kick();
      },
      removedAt: (peer) => (this.isMemberInLog(peer) ? undefined : this.fsm.removedAt(peer)),
      onRemoved: (peer, removal) => this.onRefusedAsRemoved(peer, removal),
      onRefused: (reason) => this.metrics.peerRefusals.inc({ reason }),
    });
    await this.transport.start();
    for (const [id, ctx] of this.addresses) this.setPeer(id, ctx);

    this.running = true;
    this.state = 'RUNNING';
    this.tickTimer = setInterval(() => this.onTick(), o.heartbeatIntervalMs / TICKS_PER_HEARTBEAT);
    this.tickTimer.unref?.();
    this.kick();
    this.log.info(
      { nodeId: o.nodeId, raft: `${o.raftHost}:${this.transport.port}`, api: o.apiAddress, firstIndex: first, lastIndex: last },
      'agent started',
    );
  }

  private createRawNode(applied: number): RawNode {
    const o = this.opts;
    return new RawNode({
      id: o.nodeId,
      storage: this.storage,
      rng: new SeededRng((o.nodeId * 2654435761) ^ Date.now()),
      ...coreTicks(o.electionTimeoutMs, o.heartbeatIntervalMs),
      applied,
      maxSizePerMsg: o.maxMessageBytes,
      maxInflightMsgs: o.maxInflightMessages,
      preVote: o.preVote,
      checkQuorum: o.checkQuorum,
      // The agent reports elections, membership changes and snapshots itself, one info line
      // each (onSoftState, onConfChangeApplied, installSnapshot); the core's own account of
      // them is debug detail. Its warnings stay warnings.
      logger: messageFirst(this.log, 'debug'),
    });
  }

  /** True while this node holds no cluster: no log, no snapshot (it waits to be added or initialized). */
  isEmpty(): boolean {
    return this.storage.lastIndex() === 0 && this.storage.snapshotMetadata().index === 0;
  }

  /**
   * Starts a new cluster with this node as its only voter (pgraft_init, the documents'
   * disaster-recovery path: restore one node, initialize, add the others). Only on a node
   * that holds no cluster yet; resolves once this node leads.
   */
  async initCluster(): Promise<void> {
    this.assertRunning();
    if (!this.isEmpty()) {
      throw new AgentError(
        `node ${this.id} already belongs to a cluster (its log holds ${this.storage.lastIndex()} entries); a new cluster can only be initialized on a node with an empty pgraft.data_dir. ` +
          'If the other members are lost for good, stop this agent and run pgraft force-new-cluster: this node becomes a one-member cluster and keeps its data',
        'conflict',
      );
    }
    this.running = false;
    await this.loopIdle.catch(() => undefined);
    try {
      await this.writeBootstrap([{ id: this.id, raftAddress: `${this.opts.raftHost}:${this.transport.port}`, apiAddress: this.opts.apiAddress || undefined }]);
      this.raw = this.createRawNode(0);
      this.checkMembership();
      this.raw.campaign();
    } finally {
      this.running = true;
      this.kick();
    }
    await this.waitFor(() => this.isLeader(), this.requestTimeoutMs, 'the new single-node cluster did not elect this node in time');
  }

  /** The log entry at `index`, or null beyond the end; throws if it was compacted into a snapshot. */
  entry(index: number): Entry | null {
    if (index > this.storage.lastIndex() || index < 1) return null;
    if (index < this.storage.firstIndex()) {
      throw new AgentError(
        `log entry ${index} has been compacted into the snapshot at index ${this.storage.snapshotMetadata().index}; the log now starts at ${this.storage.firstIndex()}`,
        'invalid',
      );
    }
    return this.storage.entries(index, index + 1)[0];
  }

  private async writeBootstrap(members: { id: NodeId; raftAddress: string; apiAddress?: string }[]): Promise<void> {
    if (!members.some((m) => m.id === this.id)) {
      throw new AgentError(`node ${this.id} is not in the initial cluster (${members.map((m) => m.id).join(', ')}); add it there or join an existing cluster instead`, 'invalid');
    }
    const boot = bootstrapLog(members.map((m) => m.id));
    const byId = new Map(members.map((m) => [m.id, m]));
    // Attach each member's addresses to its AddVoter entry so every node learns them from the log.
    const entries = boot.entries.map((e) => {
      const cc = decodeConfChange(e.data);
      const m = byId.get(cc.nodeId)!;
      const ctx: MemberContext = { raft: m.raftAddress };
      if (m.apiAddress) ctx.api = m.apiAddress;
      return { ...e, data: encodeBootstrapChange(cc.nodeId, ctx) };
    });
    const prior = this.storage.initialState().hardState;
    const hardState = { term: Math.max(boot.hardState.term, prior.term), vote: prior.vote, commit: boot.hardState.commit };
    await this.storage.save({ entries, hardState, mustSync: true });
    this.log.info({ voters: members.map((m) => m.id) }, 'bootstrapped a new cluster');
  }

  /** Applies new election and heartbeat timeouts without a restart (SIGHUP). */
  setTimeouts(electionTimeoutMs: number, heartbeatIntervalMs: number): void {
    const t = coreTicks(electionTimeoutMs, heartbeatIntervalMs);
    this.raw.setTimeouts(t.electionTick, t.heartbeatTick);
    this.opts.electionTimeoutMs = electionTimeoutMs;
    if (heartbeatIntervalMs !== this.opts.heartbeatIntervalMs) {
      this.opts.heartbeatIntervalMs = heartbeatIntervalMs;
      if (this.tickTimer) clearInterval(this.tickTimer);
      this.tickTimer = setInterval(() => this.onTick(), heartbeatIntervalMs / TICKS_PER_HEARTBEAT);
      this.tickTimer.unref?.();
    }
  }

  get port(): number {
    return this.transport.port;
  }

  /**
   * Settings a configuration reload may change while the agent runs; each is read where it
   * is used, so the next snapshot, compaction, batch or request follows the new value.
   */
  updateSettings(s: Partial<Pick<AgentOptions, 'snapshotInterval' | 'maxLogEntries' | 'compactionThreshold' | 'batchSize' | 'requestTimeoutMs'>>): void {
    if (s.snapshotInterval !== undefined) this.opts.snapshotInterval = s.snapshotInterval;
    if (s.maxLogEntries !== undefined) this.opts.maxLogEntries = s.maxLogEntries;
    if (s.compactionThreshold !== undefined) this.opts.compactionThreshold = s.compactionThreshold;
    if (s.batchSize !== undefined) this.opts.batchSize = s.batchSize;
    if (s.requestTimeoutMs !== undefined) this.requestTimeoutMs = s.requestTimeoutMs;
  }

  /**
   * Tells the transport how to reach a member before the log does. A node joining an
   * existing cluster has an empty log: without this it could not answer the leader's first
   * messages, and would never receive the entries that name the members.
   */
  learnMemberAddress(id: NodeId, raftAddress: string, apiAddress?: string): void {
    if (id === this.id || this.addresses.has(id)) return;
    const ctx: MemberContext = { raft: raftAddress };
    if (apiAddress) ctx.api = apiAddress;
    this.addresses.set(id, ctx);
    this.setPeer(id, ctx);
  }

  // ---- the loop -------------------------------------------------------------------------------

  private onTick(): void {
    if (!this.running) return;
    this.raw.tick();
    if (this.raw.hasReady()) this.kick();
    this.announceApiAddress();
  }

  private onPeerMessage(m: Message): void {
    if (!this.running) return;
    this.counters.messagesReceived++;
    this.metrics.messagesReceived.inc();
    this.lastContact.set(m.from, Date.now());
    try {
      this.raw.step(m);
    } catch (e) {
      if (e instanceof CommitBeyondLogError) this.fence(this.lostData(m.from, e), 'the leader said entries it lacks are committed');
      else this.fail(e as Error, 'processing a message from a peer');
      return;
    }
    this.kick();
  }

  /** Schedules the loop; everything that happens before it runs joins the same batch. */
  private kick(): void {
    if (this.loopScheduled || !this.running) return;
    this.loopScheduled = true;
    setImmediate(() => {
      this.loopIdle = this.runLoop();
    });
  }

  private async runLoop(): Promise<void> {
    try {
      while (this.running) {
        this.feedProposals();
        this.issueReads();
        if (!this.raw.hasReady()) break;
        this.readyStartedAt = Date.now();
        try {
          await this.processReady(this.raw.ready());
        } finally {
          this.readyStartedAt = 0;
        }
      }
    } catch (e) {
      this.fail(e as Error, 'the replication loop');
    } finally {
      this.loopScheduled = false;
    }
    // Queued writes and reads wait for a leader; the Ready that names one runs the loop again.
    const waiting = this.lead !== NONE && (this.proposalQueue.length > 0 || this.waitingReads.length > 0);
    if (this.running && (waiting || this.raw.hasReady())) this.kick();
    else this.flushCommitSoon();
  }

  /**
   * The core does not broadcast each commit advance: under load the next append carries it
   * at no cost. When writes stop, this timer tells the followers within COMMIT_FLUSH_MS, so
   * they apply (and answer reads) promptly.
   */
  private flushCommitSoon(): void {
    if (this.commitTimer !== null || !this.running || !this.raw.commitBroadcastPending()) return;
    this.commitTimer = setTimeout(() => {
      this.commitTimer = null;
      if (!this.running) return;
      this.raw.broadcastCommit();
      this.kick();
    }, COMMIT_FLUSH_MS);
    this.commitTimer.unref?.();
  }

  /**
   * The state to report: ERROR as well when a log write has been outstanding for longer than
   * two election timeouts (at least 5 s): a hung disk, not a busy one.
   */
  workerState(): WorkerState {
    if (this.state !== 'RUNNING' || this.readyStartedAt === 0) return this.state;
    const stuckMs = Date.now() - this.readyStartedAt;
    return stuckMs > Math.max(5000, 2 * this.opts.electionTimeoutMs) ? 'ERROR' : 'RUNNING';
  }

  private async processReady(rd: Ready): Promise<void> {
    if (rd.softState) this.onSoftState(rd.softState.lead, rd.softState.role);
    // Leader appends and heartbeats do not depend on the leader's own disk write (thesis
    // §10.2.1): the leader counts itself only once advance() reports the entries durable.
    // But they carry its term: when this Ready changes term or vote, nothing leaves before
    // they are on disk, or a crash could let this node lead the same term twice with
    // different entries.
    const termDurable =
      !rd.hardState || (rd.hardState.term === this.durableTermVote.term && rd.hardState.vote === this.durableTermVote.vote);
    const early: Message[] = [];
    const late: Message[] = [];
    for (const m of rd.messages) {
      if (termDurable && (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap)) early.push(m);
      else late.push(m);
    }
    this.send(early);

    if (rd.entries.length > 0) this.learnAddresses(rd.entries);
    if (rd.snapshot || rd.entries.some((e) => e.type === EntryType.ConfChange)) this.checkMembership();
    if (rd.snapshot || rd.entries.length > 0 || rd.hardState) {
      const t0 = performance.now();
      try {
        await this.storage.save({ hardState: rd.hardState, entries: rd.entries, snapshot: rd.snapshot, mustSync: rd.mustSync });
      } catch (e) {
        this.counters.storageErrors++;
        this.metrics.storageErrors.inc();
        throw e;
      }
      if (rd.hardState) this.durableTermVote = { term: rd.hardState.term, vote: rd.hardState.vote };
      if (rd.entries.length > 0 || rd.snapshot) {
        this.metrics.fsyncDuration.observe((performance.now() - t0) / 1000);
        if (rd.entries.length > 0) this.metrics.batchEntries.observe(rd.entries.length);
      }
    }
    this.send(late);

    if (rd.snapshot) this.installSnapshot(rd);
    for (const e of rd.committedEntries) this.applyEntry(e);
    for (const rs of rd.readStates) this.onReadState(rs.context, rs.index);
    this.raw.advance(rd);
    this.releaseReads();
    this.releaseApplyWaiters();
    this.maybeSnapshot();
  }

  private send(msgs: Message[]): void {
    if (msgs.length === 0) return;
    for (const m of msgs) {
      if (m.type === MessageType.Heartbeat) {
        this.counters.heartbeatsSent++;
        this.metrics.heartbeatsSent.inc();
      } else if (m.type === MessageType.Snap && m.snapshot) {
        this.log.info({ to: m.to, index: m.snapshot.metadata.index, term: m.snapshot.metadata.term }, `sending a snapshot to node ${m.to}`);
      }
    }
    this.counters.messagesSent += msgs.length;
    this.metrics.messagesSent.inc(msgs.length);
    this.transport.send(msgs);
  }

  private onSoftState(lead: NodeId, role: StateRole): void {
    if (role === StateRole.Candidate && this.role !== StateRole.Candidate) {
      this.counters.electionsTriggered++;
      this.metrics.elections.inc();
    }
    this.role = role;
    if (lead !== this.lead) {
      const prev = this.lead;
      this.lead = lead;
      this.metrics.leaderChanges.inc();
      const term = this.raw.status().hardState.term;
      const previous = this.lastLeader;
      if (lead !== NONE) this.lastLeader = lead;
      if (lead === this.id) {
        this.leaderTerm = term;
        this.log.info({ term, previous }, 'became leader');
      } else if (lead !== NONE) {
        this.log.info({ leader: lead, previous, term }, 'leader elected');
      } else if (prev === this.id && term === this.leaderTerm) {
        this.log.warn({ term }, 'stepped down as leader: no quorum heard from within an election timeout');
      }
      // Otherwise an election is under way; its outcome gets the line.
      this.emit('leader', lead);
    }
    // Proposals already in the log may yet commit under the next leader: they stay pending
    // until their entry is applied (or another takes its index) or they time out. Queued
    // ones are forwarded to whichever leader is known when they are fed to the core.
  }

  private applyEntry(e: Entry): void {
    let result: ApplyResult;
    try {
      result = this.fsm.apply(e);
    } catch (err) {
      throw new AgentError(`cannot apply log entry ${e.index}: ${(err as Error).message}`);
    }
    if (e.type === EntryType.ConfChange) this.onConfChangeApplied(e);
    const id = result.proposal;
    if (id && id.origin === this.id && id.epoch === this.epoch) this.settle(id.seq, result, null);
    const slot = this.bySlot.get(e.index);
    if (slot === undefined) return;
    this.bySlot.delete(e.index);
    const p = this.pending.get(slot);
    if (!p) return;
    if (p.term === e.term) this.settle(slot, result, null);
    else this.settle(slot, null, new AgentError('the write was lost in a leader change and did not commit; retry it', 'unavailable'));
  }

  private settle(seq: number, result: ApplyResult | null, err: Error | null): void {
    const p = this.pending.get(seq);
    if (!p) return;
    this.pending.delete(seq);
    if (p.index) this.bySlot.delete(p.index);
    clearTimeout(p.timer);
    if (result) {
      this.counters.proposalsCommitted++;
      this.metrics.proposals.inc({ result: 'committed' });
      this.metrics.proposalLatency.observe((performance.now() - p.started) / 1000);
      p.resolve(result);
    } else {
      this.counters.proposalsFailed++;
      this.metrics.proposals.inc({ result: err instanceof AgentError && err.code === 'timeout' ? 'timeout' : 'failed' });
      p.reject(err!);
    }
  }

  private onConfChangeApplied(e: Entry): void {
    const cc = decodeConfChange(e.data);
    if (cc.type === ConfChangeType.RemoveNode) {
      if (cc.nodeId !== this.id) {
        this.transport.removePeer(cc.nodeId);
        this.addresses.delete(cc.nodeId);
      }
    }
    const c = this.fsm.conf;
    const level = e.index <= this.replayedUpTo ? 'debug' : 'info';
    this.log[level]({ voters: c.voters, learners: c.learners, index: e.index }, 'membership change committed');
    this.emit('membership');
  }

  private installSnapshot(rd: Ready): void {
    const s = rd.snapshot!;
    this.fsm.restore(s.data, s.metadata.index, s.metadata.confState);
    this.lastSnapshotIndex = s.metadata.index;
    for (const m of this.fsm.memberList()) {
      this.addresses.set(m.id, { raft: m.raftAddress, api: m.apiAddress });
      this.setPeer(m.id, { raft: m.raftAddress, api: m.apiAddress });
    }
    for (const [seq, p] of this.pending) {
      if (p.index > 0 && p.index <= s.metadata.index) {
        this.settle(seq, null, new AgentError('outcome unknown: this node installed a snapshot past the write; read the key to check', 'unavailable'));
      }
    }
    this.counters.snapshotsInstalled++;
    this.metrics.snapshotsInstalled.inc();
    this.log.info({ index: s.metadata.index, term: s.metadata.term }, 'installed snapshot from the leader');
  }

  /**
   * Membership takes effect when its entry reaches the log (thesis §4.1): the moment this
   * node's log removes it, it stops taking part (the core no longer campaigns); say so once.
   */
  private checkMembership(): void {
    const c = this.raw.status().config;
    const member = c.voters.includes(this.id) || c.learners.includes(this.id);
    if (this.wasMember && !member) {
      this.log.warn({}, 'this node was removed from the cluster: it takes no further part; stop its agent (and its PostgreSQL, if it is retired)');
      this.emit('removed');
    }
    this.wasMember = member;
  }

  /** Whether `id` is a voter or learner in the membership this node's log ends with. */
  private isMemberInLog(id: NodeId): boolean {
    const c = this.raw.status().config;
    return c.voters.includes(id) || c.learners.includes(id);
  }

  /**
   * A peer refused this node as removed from the cluster by the entry `removal`. If this
   * node's log lacks that entry while it still counts itself a member, it missed its own
   * removal (it was down, cut off, or one of the members force-new-cluster removed): it
   * stops for good, and the note it leaves keeps it from starting again on this data. A
   * node with no membership yet (empty, being added) or whose log holds the entry (removed
   * and added back, the peer not yet knowing) only logs the refusal. When the entry is
   * compacted away here, nothing can be told, and the refusal is only logged too.
   */
  private onRefusedAsRemoved(peer: NodeId, removal: Removal): void {
    if (!this.running || !this.isMemberInLog(this.id)) return;
    if (removal.index <= this.storage.lastIndex()) {
      let term: number;
      try {
        term = this.storage.term(removal.index);
      } catch {
        return;
      }
      if (term === removal.term) return;
    }
    const e = new FencedError(
      `node ${peer} refused this node (${this.id}): it was removed from the cluster by log entry ${removal.index} (term ${removal.term}), ` +
        `which this node never received; it runs on data from before its removal and takes no further part. To bring it back, ` +
        `empty pgraft.data_dir (${this.opts.dataDir}) and add it again: SELECT pgraft_add_node(...) on the leader, or pgraft agent --join`,
    );
    this.fence(e, 'a peer refused it as removed from the cluster');
  }

  /**
   * The leader says entries up to e.commit are committed. It says so only up to what this
   * node acknowledged (raft.ts, bcastHeartbeat), yet this log ends before: it lost entries it
   * had acknowledged. As a voter it could help elect a leader that lacks them, so it stops.
   */
  private lostData(leader: NodeId, e: CommitBeyondLogError): FencedError {
    const id = this.id;
    return new FencedError(
      `node ${leader}, the leader, counts this node (${id}) as holding the log up to entry ${e.commit}, but its log ends at ${e.lastIndex}: ` +
        `its data was lost (pgraft.data_dir emptied, on a new disk, or restored from an older copy). It takes no further part, so that ` +
        `it cannot help elect a leader without the entries it had acknowledged. To bring it back, remove it on the leader ` +
        `(pgraft remove ${id}, or SELECT pgraft_remove_node(${id})), empty pgraft.data_dir (${this.opts.dataDir}) and start it with --join`,
    );
  }

  /** Stops for good (see FencedError), leaving the reason in the data directory. */
  private fence(e: FencedError, during: string): void {
    // Queued before fail(), so that stopping the storage waits for the note.
    const noted = this.storage.recordFence(`${new Date().toISOString()}: ${e.message}\n`);
    this.fail(e, during);
    noted.catch((err: unknown) => this.log.error({ err }, 'could not record in the data directory why the node stopped'));
  }

  /** Learns peers' addresses from membership entries as soon as they are in the log (§4.1: config on append). */
  private learnAddresses(entries: Entry[]): void {
    for (const e of entries) {
      if (e.type !== EntryType.ConfChange) continue;
      const cc = decodeConfChange(e.data);
      if (cc.type === ConfChangeType.RemoveNode || cc.context.length === 0) continue;
      try {
        const ctx = JSON.parse(new TextDecoder().decode(cc.context)) as MemberContext;
        if (typeof ctx.raft !== 'string') continue;
        this.addresses.set(cc.nodeId, ctx);
        if (this.transport) this.setPeer(cc.nodeId, ctx);
      } catch {
        // not an address context
      }
    }
  }

  private setPeer(id: NodeId, ctx: MemberContext): void {
    if (id === this.id || !ctx.raft) return;
    const { host, port } = splitHostPort(ctx.raft);
    this.transport.setPeer(id, host, port);
  }

  // ---- snapshots and compaction ----------------------------------------------------------

  private maybeSnapshot(): void {
    if (this.snapshotInProgress || this.state !== 'RUNNING') return;
    if (this.fsm.appliedIndex - this.lastSnapshotIndex < this.opts.snapshotInterval) return;
    // Entries applied while this one is written may make the next one due already.
    void this.takeSnapshot().then(
      () => this.maybeSnapshot(),
      (e) => this.fail(e as Error, 'taking a snapshot'),
    );
  }

  /** Snapshots the state machine at its applied index and compacts the log behind it. */
  async takeSnapshot(): Promise<{ index: number; term: number }> {
    if (this.snapshotInProgress) throw new AgentError('a snapshot is already being taken', 'conflict');
    this.snapshotInProgress = true;
    const t0 = performance.now();
    try {
      if (this.fsm.appliedIndex === 0) throw new AgentError('nothing to snapshot yet: no entry has been applied', 'invalid');
      // The state as it is once earlier log writes are done. Entries go on being applied while
      // the image is written: it reads the state as it was when it was opened (fsm.image()).
      let image: OpenImage | undefined;
      const snap = await this.storage
        .snapshotState(() => {
          image = this.fsm.image();
          return { index: image.index, confState: this.fsm.conf, image };
        })
        .finally(() => image?.close());
      const index = snap.metadata.index;
      this.lastSnapshotIndex = index;
      // Memory keeps max_log_entries before the snapshot; segment files are deleted in batches
      // of at least compaction_threshold entries.
      const compactTo = index - this.opts.maxLogEntries;
      if (compactTo >= this.storage.firstIndex()) {
        const removeFiles = compactTo - this.filesCompactedTo >= this.opts.compactionThreshold;
        await this.storage.compact(compactTo, removeFiles);
        if (removeFiles) this.filesCompactedTo = compactTo;
      }
      this.counters.snapshotsTaken++;
      this.metrics.snapshots.inc();
      this.metrics.snapshotDuration.observe((performance.now() - t0) / 1000);
      this.log.info({ index, term: snap.metadata.term, firstIndex: this.storage.firstIndex() }, 'snapshot taken');
      return { index, term: snap.metadata.term };
    } finally {
      this.snapshotInProgress = false;
    }
  }

  // ---- proposals ----------------------------------------------------------------------------

  private leaderApi(): string {
    return this.lead === NONE ? '' : (this.addresses.get(this.lead)?.api ?? this.fsm.member(this.lead)?.apiAddress ?? '');
  }

  private notLeader(): NotLeaderError {
    const ctx = this.addresses.get(this.lead);
    return new NotLeaderError(this.lead, this.leaderApi(), ctx?.raft ?? '');
  }

  isLeader(): boolean {
    return this.role === StateRole.Leader;
  }

  leaderId(): NodeId {
    return this.lead;
  }

  /**
   * Replicates a command from any node (a follower's proposal is forwarded to the leader);
   * resolves once it is committed and applied on this node.
   */
  propose(c: Command): Promise<ApplyResult> {
    const seq = ++this.nextSeq;
    return this.enqueue(EntryType.Normal, encodeProposal({ origin: this.id, epoch: this.epoch, seq }, c), seq);
  }

  private enqueue(type: EntryType, data: Uint8Array, seq = ++this.nextSeq): Promise<ApplyResult> {
    this.assertRunning();
    // Membership changes are made on the leader only, so the caller learns where it is.
    // Other writes wait (up to the request timeout) for a leader to be known.
    if (type === EntryType.ConfChange && !this.isLeader()) return Promise.reject(this.notLeader());
    // A node outside the configuration would never apply the write: refuse it at once.
    if (!this.wasMember) {
      return Promise.reject(
        new AgentError(
          this.isEmpty()
            ? `node ${this.id} is not a member of a cluster yet; send the write to a member, or add this node first`
            : `node ${this.id} was removed from the cluster; send the write to a member`,
          'unavailable',
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.expire(seq), this.requestTimeoutMs);
      timer.unref?.();
      this.proposalQueue.push({ seq, type, data, started: performance.now(), resolve, reject, timer });
      this.kick();
    });
  }

  /** A proposal ran out of time, still queued (no leader) or in the core (no quorum). */
  private expire(seq: number): void {
    const qi = this.proposalQueue.findIndex((q) => q.seq === seq);
    if (qi >= 0) {
      const [q] = this.proposalQueue.splice(qi, 1);
      this.counters.proposalsFailed++;
      this.metrics.proposals.inc({ result: 'timeout' });
      q.reject(new AgentError(`no leader was elected within ${this.requestTimeoutMs} ms (is a majority of the nodes up?); the write was not made`, 'timeout'));
      return;
    }
    this.settle(
      seq,
      null,
      new AgentError(`the write was not committed within ${this.requestTimeoutMs} ms (no quorum reachable?); it may still commit later`, 'timeout'),
    );
  }

  /** Moves queued proposals into the core, at most batch_size per Ready. */
  private feedProposals(): void {
    if (this.proposalQueue.length === 0) return;
    const uncommitted = this.raw.uncommittedEntries();
    if (uncommitted >= (this.opts.maxUncommittedEntries ?? 100000)) {
      this.failQueued(
        new AgentError(
          `${uncommitted} writes are waiting for a quorum; refusing more until the followers catch up`,
          'unavailable',
        ),
      );
      return;
    }
    if (this.lead === NONE) return; // wait for a leader (or the timeout)
    const n = Math.min(this.proposalQueue.length, this.opts.batchSize);
    for (let i = 0; i < n; i++) {
      const q = this.proposalQueue.shift()!;
      let r: { index: number; term: number } | null;
      try {
        if (q.type === EntryType.ConfChange) {
          if (!this.isLeader()) {
            clearTimeout(q.timer);
            q.reject(this.notLeader());
            continue;
          }
          r = this.raw.proposeConfChange(decodeConfChange(q.data));
        } else {
          r = this.raw.propose(q.data);
        }
      } catch (e) {
        this.counters.proposalsFailed++;
        this.metrics.proposals.inc({ result: 'refused' });
        clearTimeout(q.timer);
        q.reject(e instanceof ProposalDroppedError ? new AgentError(e.message, 'conflict') : (e as Error));
        continue;
      }
      this.pending.set(q.seq, { index: r?.index ?? 0, term: r?.term ?? 0, started: q.started, resolve: q.resolve, reject: q.reject, timer: q.timer });
      if (r) this.bySlot.set(r.index, q.seq);
    }
  }

  private failQueued(e: Error): void {
    for (const q of this.proposalQueue.splice(0)) {
      clearTimeout(q.timer);
      q.reject(e);
    }
  }

  // ---- linearizable reads (ReadIndex) --------------------------------------------------------

  /**
   * Resolves once this node's state machine reflects every write committed before the call
   * (thesis §6.4). Concurrent reads share one ReadIndex round; a read never joins a round
   * issued before it arrived.
   */
  readBarrier(): Promise<void> {
    this.assertRunning();
    return new Promise((resolve, reject) => {
      const r: PendingRead = { resolve, reject, index: 0, timer: undefined as unknown as NodeJS.Timeout };
      r.timer = setTimeout(() => {
        this.dropRead(r);
        reject(new AgentError(`no leader confirmed the read within ${this.requestTimeoutMs} ms (no quorum reachable?)`, 'timeout'));
      }, this.requestTimeoutMs);
      r.timer.unref?.();
      this.waitingReads.push(r);
      this.kick();
    });
  }

  private issueReads(): void {
    if (this.waitingReads.length === 0) return;
    if (this.lead === NONE) return; // wait for a leader (or the timeout)
    const ctx = `${this.id}:${++this.readCounter}`;
    const batch = this.waitingReads.splice(0);
    try {
      this.raw.readIndex(new TextEncoder().encode(ctx));
      this.issuedReads.set(ctx, batch);
    } catch {
      this.waitingReads.unshift(...batch); // no leader right now: retry on the next loop
    }
  }

  private onReadState(context: Uint8Array, index: number): void {
    const key = new TextDecoder().decode(context);
    const batch = this.issuedReads.get(key);
    if (!batch) return;
    this.issuedReads.delete(key);
    for (const r of batch) {
      r.index = index;
      this.readyReads.push(r);
    }
  }

  private releaseReads(): void {
    if (this.readyReads.length === 0) return;
    const applied = this.fsm.appliedIndex;
    for (let i = this.readyReads.length - 1; i >= 0; i--) {
      const r = this.readyReads[i];
      if (r.index <= applied) {
        this.readyReads.splice(i, 1);
        clearTimeout(r.timer);
        r.resolve();
      }
    }
  }

  private dropRead(r: PendingRead): void {
    const drop = (arr: PendingRead[]) => {
      const i = arr.indexOf(r);
      if (i >= 0) arr.splice(i, 1);
    };
    drop(this.waitingReads);
    drop(this.readyReads);
    for (const batch of this.issuedReads.values()) drop(batch);
  }

  async get(key: string, consistency: 'linearizable' | 'stale' = 'linearizable'): Promise<string | null> {
    if (consistency === 'linearizable') await this.readBarrier();
    return this.fsm.get(key);
  }

  // ---- membership -----------------------------------------------------------------------

  /** Proposes one membership change on the leader; resolves once it is applied here. */
  changeMembership(type: ConfChangeType, nodeId: NodeId, ctx?: MemberContext): Promise<ApplyResult> {
    const cc = { type, nodeId, context: ctx ? encodeMemberContext(ctx) : new Uint8Array(0) };
    return this.enqueue(EntryType.ConfChange, encodeConfChange(cc));
  }

  /**
   * Adds a node the safe way: as a learner first, waits until it has caught up with the
   * log, then (unless asLearner) promotes it to voter, so the quorum never waits on an
   * empty node.
   */
  async addMember(nodeId: NodeId, raftAddress: string, apiAddress: string | undefined, asLearner: boolean, catchUpTimeoutMs = 60000): Promise<void> {
    const conf = this.raw.status().config;
    const ctx: MemberContext = { raft: raftAddress };
    if (apiAddress) ctx.api = apiAddress;
    if (conf.voters.includes(nodeId)) throw new AgentError(`node ${nodeId} is already a voter`, 'conflict');
    if (!conf.learners.includes(nodeId)) await this.changeMembership(ConfChangeType.AddLearner, nodeId, ctx);
    if (asLearner) return;
    await this.waitCaughtUp(nodeId, catchUpTimeoutMs);
    await this.changeMembership(ConfChangeType.AddVoter, nodeId, ctx);
  }

  async removeMember(nodeId: NodeId): Promise<void> {
    const conf = this.raw.status().config;
    if (!conf.voters.includes(nodeId) && !conf.learners.includes(nodeId)) {
      throw new AgentError(`node ${nodeId} is not a member of the cluster`, 'invalid');
    }
    await this.changeMembership(ConfChangeType.RemoveNode, nodeId);
  }

  /** Waits until `nodeId` holds every entry the leader had when the call was made. */
  async waitCaughtUp(nodeId: NodeId, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const target = this.raw.status().lastIndex;
    for (;;) {
      if (!this.isLeader()) throw this.notLeader();
      const pr = this.progress()?.get(nodeId);
      if (pr && pr.match >= target) return;
      if (Date.now() > deadline) {
        throw new AgentError(
          `node ${nodeId} did not catch up within ${timeoutMs} ms (match ${pr?.match ?? 0} of ${target}); check that its agent is running and reachable`,
          'timeout',
        );
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(50, this.opts.heartbeatIntervalMs));
        t.unref?.();
      });
    }
  }

  /** Hands leadership to `target` (default: the most up-to-date voter); resolves with the new leader. */
  async transferLeadership(target?: NodeId): Promise<NodeId> {
    if (!this.isLeader()) throw this.notLeader();
    const st = this.raw.status();
    if (target === undefined || target === NONE) {
      let best: NodeId = NONE;
      let bestMatch = -1;
      for (const [id, pr] of st.progress ?? []) {
        if (id === this.id || pr.isLearner) continue;
        if (pr.match > bestMatch) {
          best = id;
          bestMatch = pr.match;
        }
      }
      if (best === NONE) throw new AgentError('there is no other voter to transfer leadership to', 'invalid');
      target = best;
    }
    if (target === this.id) return this.id;
    if (!st.config.voters.includes(target)) throw new AgentError(`node ${target} is not a voter`, 'invalid');
    try {
      this.raw.transferLeadership(target);
    } catch (e) {
      throw new AgentError((e as Error).message, 'conflict');
    }
    this.kick();
    const timeoutMs = this.opts.electionTimeoutMs * 2;
    await this.waitFor(() => this.lead === target, timeoutMs, `leadership did not move to node ${target} within ${timeoutMs} ms`);
    return target;
  }

  private async waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > deadline) throw new AgentError(what, 'timeout');
      await new Promise<void>((r) => {
        const t = setTimeout(r, 10);
        t.unref?.();
      });
    }
  }

  /** Resolves once the state machine has applied `index`. */
  waitApplied(index: number): Promise<void> {
    if (this.fsm.appliedIndex >= index) return Promise.resolve();
    return new Promise((resolve) => this.applyWaiters.push({ index, resolve }));
  }

  private releaseApplyWaiters(): void {
    if (this.applyWaiters.length === 0) return;
    const applied = this.fsm.appliedIndex;
    this.applyWaiters = this.applyWaiters.filter((w) => {
      if (w.index > applied) return true;
      w.resolve();
      return false;
    });
  }

  /**
   * Records this node's API address in the replicated state when it is missing there (a
   * founding member's bootstrap entry carries only its Raft address) or has changed, so that
   * `pgraft status` shows it and followers can send clients to the leader. Proposed like any
   * write, from leader or follower, once a leader is known and this node is a member in the
   * applied state; checked at every tick, and retried ANNOUNCE_RETRY_MS after a failure.
   */
  private announceApiAddress(): void {
    const api = this.opts.apiAddress;
    if (!api || this.announcing || this.lead === NONE || !this.wasMember || Date.now() < this.announceRetryAt) return;
    if (this.fsm.member(this.id) === undefined || this.apiAddressRecorded()) return;
    this.announcing = true;
    this.propose({ op: Op.MemberMeta, nodeId: this.id, apiAddress: api })
      .catch((e: unknown) => {
        this.announceRetryAt = Date.now() + ANNOUNCE_RETRY_MS;
        this.log.debug({ err: (e as Error).message }, 'could not record this node\'s API address yet; retrying');
      })
      .finally(() => {
        this.announcing = false;
      });
  }

  /** Whether the replicated state holds this node's API address as configured. */
  private apiAddressRecorded(): boolean {
    return this.fsm.member(this.id)?.apiAddress === this.opts.apiAddress;
  }

  // ---- status ----------------------------------------------------------------------------

  status(): Status {
    return this.raw.status();
  }

  progress(): Map<NodeId, PeerProgress> | null {
    return this.raw.status().progress;
  }

  memberAddress(id: NodeId): MemberContext | undefined {
    return this.addresses.get(id);
  }

  // ---- lifecycle -------------------------------------------------------------------------

  private assertRunning(): void {
    if (this.state === 'ERROR') throw new AgentError(`the agent has stopped after an error: ${this.failure?.message}`, 'failed');
    if (!this.running) throw new AgentError(`the agent is ${this.state.toLowerCase()}`, 'unavailable');
  }

  /** A failure that makes it unsafe to go on (storage, a broken invariant): stop acknowledging. */
  private fail(e: Error, during: string): void {
    if (this.state === 'ERROR') return;
    this.failure = e;
    this.state = 'ERROR';
    this.running = false;
    this.log.error({ err: e, during }, 'agent stopped: it no longer acknowledges anything');
    this.rejectAll(new AgentError(`the agent failed: ${e.message}`, 'failed'));
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.commitTimer) clearTimeout(this.commitTimer);
    void this.transport?.stop();
    this.emit('fatal', e);
  }

  private rejectAll(err: Error): void {
    this.failQueued(err);
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    this.bySlot.clear();
    const reads = [...this.waitingReads.splice(0), ...this.readyReads.splice(0)];
    for (const batch of this.issuedReads.values()) reads.push(...batch);
    this.issuedReads.clear();
    for (const r of reads) {
      clearTimeout(r.timer);
      r.reject(err);
    }
  }

  /**
   * Stops the agent. A leader first hands leadership to its most up-to-date voter (unless
   * handOver is false), so a planned restart costs the cluster no election timeout.
   */
  async stop(opts: { handOver?: boolean } = {}): Promise<void> {
    if (this.state === 'STOPPED') return;
    if ((opts.handOver ?? true) && this.running && this.isLeader() && this.raw.status().config.voters.length > 1) {
      try {
        const to = await this.transferLeadership();
        this.log.info({ successor: to }, `handed leadership to node ${to} before stopping`);
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'could not hand over leadership before stopping; the others will elect a leader');
      }
    }
    const failed = this.state === 'ERROR';
    if (!failed) this.state = 'STOPPING';
    this.running = false;
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.commitTimer) clearTimeout(this.commitTimer);
    await this.loopIdle.catch(() => undefined);
    this.rejectAll(new AgentError('the agent is shutting down', 'unavailable'));
    await this.transport?.stop();
    await this.storage?.close().catch(() => undefined);
    if (!failed) this.state = 'STOPPED';
    this.log.info({}, 'agent stopped');
  }
}

function encodeBootstrapChange(nodeId: NodeId, ctx: MemberContext): Uint8Array {
  return encodeConfChange({ type: ConfChangeType.AddVoter, nodeId, context: encodeMemberContext(ctx) });
}

/** The core and the storage log message-first; pino takes fields first. */
function messageFirst(l: Logger, infoAs: 'info' | 'debug' = 'info') {
  return {
    debug: (msg: string, f?: Record<string, unknown>) => l.debug(f ?? {}, msg),
    info: (msg: string, f?: Record<string, unknown>) => l[infoAs](f ?? {}, msg),
    warn: (msg: string, f?: Record<string, unknown>) => l.warn(f ?? {}, msg),
    error: (msg: string, f?: Record<string, unknown>) => l.error(f ?? {}, msg),
  };
}

export function splitHostPort(addr: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(addr);
  if (!m) throw new AgentError(`"${addr}" is not host:port`, 'invalid');
  return { host: m[1], port: Number(m[2]) };
}
