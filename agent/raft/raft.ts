import { applyConfChange, cloneConfState, decodeConfChange, validateConfChange } from './confchange';
import { RaftLog } from './log';
import { Progress } from './progress';
import { committedIndex, voteResult, VoteResult } from './quorum';
import { PeerProgress, ProgressState, RaftConfig, RaftLogger } from './rawnode';
import { ReadOnly } from './read_only';
import {
  CompactedError,
  ConfState,
  Entry,
  EntryType,
  HardState,
  Message,
  MessageType,
  NONE,
  NodeId,
  ReadState,
  Rng,
  Snapshot,
  SoftState,
  StateRole,
  emptyMessage,
} from './types';

enum CampaignType {
  PreElection = 'pre-election',
  Election = 'election',
  /** Leadership transfer: skips pre-vote and overrides voters' leader leases (thesis §3.10). */
  Transfer = 'transfer',
}

/** Marks a vote request as part of a leadership transfer (Message.context). */
const CAMPAIGN_TRANSFER = new Uint8Array([0x74]); // 't'

const noopLogger: RaftLogger = { debug() {}, info() {}, warn() {} };

/** One entry of the configuration history: the membership in force from `index` on. */
interface ConfPoint {
  index: number;
  conf: ConfState;
}

/**
 * The Raft state machine (thesis chapter 3 and Figure 2), stepped with messages and ticks.
 * Pure: no clock, no I/O, no Math.random. Role behaviour lives in stepLeader,
 * stepCandidate and stepFollower, as in etcd's raft.go.
 *
 * Membership follows the thesis §4.1: a node uses the latest configuration in its log,
 * committed or not, and a leader proposes a change only when the previous one is
 * committed and it has committed an entry of its own term (the fix to single-server
 * changes described on raft-dev in 2015). Safety therefore never depends on when the
 * commit index reaches disk.
 */
export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  state: StateRole = StateRole.Follower;
  readonly raftLog: RaftLog;

  /** Replication progress of every other member; only meaningful on the leader. */
  readonly prs = new Map<NodeId, Progress>();
  conf: ConfState;
  private baseConf: ConfState;
  private confHistory: ConfPoint[] = [];

  msgs: Message[] = [];
  readStates: ReadState[] = [];
  /** Proposals or a new commit index are waiting to go out: flushed once per Ready (batching). */
  needBroadcast = false;

  private votes = new Map<NodeId, boolean>();
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /** Election timeouts reached since this node last heard from a leader (see electionSpread). */
  private timeoutsWithoutLeader = 0;
  electionTimeout: number;
  heartbeatTimeout: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly maxSizePerMsg: number;
  private readonly maxInflight: number;
  private readonly rng: Rng;
  private readonly logger: RaftLogger;

  leadTransferee: NodeId = NONE;
  private readOnly = new ReadOnly();
  private pendingReadIndexMessages: Message[] = [];
  /** Some node's removal is not yet committed (see departing()). */
  private hasDeparting = false;
  /** Some member waits to hear that its forwarded proposal committed (see tellProposers()). */
  private proposersWaiting = false;
  /** False while replaying the log at start-up, when membership "changes" are not news. */
  private started = false;

  constructor(cfg: RaftConfig) {
    if (!Number.isInteger(cfg.id) || cfg.id <= 0) throw new Error(`node id must be a positive integer, got ${cfg.id}`);
    if (cfg.heartbeatTick <= 0) throw new Error('heartbeatTick must be greater than 0');
    if (cfg.electionTick <= cfg.heartbeatTick) throw new Error('electionTick must be greater than heartbeatTick');
    this.id = cfg.id;
    this.electionTimeout = cfg.electionTick;
    this.heartbeatTimeout = cfg.heartbeatTick;
    this.preVote = cfg.preVote ?? true;
    this.checkQuorum = cfg.checkQuorum ?? true;
    this.maxSizePerMsg = cfg.maxSizePerMsg ?? 1024 * 1024;
    this.maxInflight = cfg.maxInflightMsgs ?? 256;
    this.rng = cfg.rng;
    this.logger = cfg.logger ?? noopLogger;
    this.raftLog = new RaftLog(cfg.storage, cfg.maxCommittedSizePerReady ?? 64 * 1024 * 1024);

    const { hardState, confState } = cfg.storage.initialState();
    if (hardState.commit < this.raftLog.committed || hardState.commit > this.raftLog.lastIndex()) {
      throw new Error(
        `hard state commit ${hardState.commit} is outside the log [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]; the log is damaged`,
      );
    }
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.raftLog.committed = hardState.commit;
    if (cfg.applied !== undefined && cfg.applied > 0) this.raftLog.appliedTo(cfg.applied);

    this.baseConf = cloneConfState(confState);
    this.conf = cloneConfState(confState);
    this.recordConfEntries(this.raftLog.slice(this.raftLog.firstIndex(), this.raftLog.lastIndex() + 1));
    this.syncProgress();
    this.becomeFollower(this.term, NONE);
    this.started = true;
  }

  // ---- state queries ------------------------------------------------------------------

  softState(): SoftState {
    return { lead: this.lead, role: this.state };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  /** Only voters may campaign (learners and removed nodes never do). */
  promotable(): boolean {
    return this.conf.voters.includes(this.id);
  }

  /**
   * Whether this node starts elections: as a voter of its latest configuration, or as a voter
   * that configuration removes before the removal has committed here (thesis §4.2.2): the
   * removal may yet be lost, and this node may hold the only log that can win. Its own vote
   * counts only where it is a voter (poll tallies the latest configuration's voters).
   */
  private mayCampaign(): boolean {
    return this.promotable() || this.departing().includes(this.id);
  }

  /** Index of the latest configuration entry in the log (0 if the configuration came from a snapshot or bootstrap). */
  lastConfIndex(): number {
    return this.confHistory.length > 0 ? this.confHistory[this.confHistory.length - 1].index : 0;
  }

  progressView(): Map<NodeId, PeerProgress> {
    const out = new Map<NodeId, PeerProgress>();
    if (this.conf.voters.includes(this.id) || this.conf.learners.includes(this.id)) {
      const match = this.raftLog.stableIndex();
      out.set(this.id, {
        match,
        next: match + 1,
        state: ProgressState.Replicate,
        recentActive: true,
        inflight: 0,
        pendingSnapshot: 0,
        isLearner: this.conf.learners.includes(this.id),
      });
    }
    for (const [id, pr] of this.prs) out.set(id, pr.view());
    return out;
  }

  private matchOf(id: NodeId): number {
    if (id === this.id) return this.raftLog.stableIndex();
    return this.prs.get(id)?.match ?? 0;
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.raftLog.zeroTermOnCompacted(this.raftLog.committed) === this.term;
  }

  // ---- role transitions -----------------------------------------------------------------

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = NONE;
    this.votes.clear();
    const next = this.raftLog.lastIndex() + 1;
    for (const pr of this.prs.values()) {
      pr.match = 0;
      pr.next = next;
      pr.state = ProgressState.Probe;
      pr.probeSent = false;
      pr.pendingSnapshot = 0;
      pr.recentActive = false;
      pr.awaitedCommit = 0;
      pr.inflights.reset();
    }
    this.proposersWaiting = false;
    this.needBroadcast = false;
    this.readOnly = new ReadOnly();
    this.pendingReadIndexMessages = [];
  }

  /**
   * Randomized in [electionTimeout, electionTimeout + electionSpread()) so that split votes are
   * rare and resolve (§5.2).
   */
  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTimeout + this.rng.intn(this.electionSpread());
  }

  /**
   * How widely election timeouts are spread: a quarter of the election timeout, doubled with
   * every further timeout this node reaches without hearing from a leader, up to a whole one.
   *
   * After a silent leader failure the first follower to time out decides how long the cluster
   * is without a leader: its timeout is the minimum of the followers' draws, a third of the
   * spread above the election timeout on average with two of them, so every failover pays for
   * the spread. What the spread buys is fewer split votes: with pre-vote, a split needs a
   * second follower to time out within about one round trip of the first (before the first
   * holds its pre-votes and campaigns), which happens in about 2 × round trip / spread of
   * elections: under one in a hundred on a LAN (a round trip under a millisecond against a
   * spread of 250 ms with the default timeout).
   * Where round trips are long, a failed election widens the spread: 1/4, 1/2, then the whole
   * election timeout, as wide as etcd's and hashicorp/raft's from the start. The thesis (§9.3)
   * measured narrow ranges electing quickly on a LAN.
   */
  private electionSpread(): number {
    const quarter = Math.max(1, Math.ceil(this.electionTimeout / 4));
    return Math.min(this.electionTimeout, quarter * 2 ** Math.min(this.timeoutsWithoutLeader, 2));
  }

  /** Records who leads; hearing from a leader again narrows the spread of election timeouts. */
  private setLead(id: NodeId): void {
    this.lead = id;
    if (id !== NONE && this.timeoutsWithoutLeader > 0) {
      this.timeoutsWithoutLeader = 0;
      this.resetRandomizedElectionTimeout();
    }
  }

  becomeFollower(term: number, lead: NodeId): void {
    const wasLeader = this.state === StateRole.Leader;
    this.reset(term);
    this.setLead(lead);
    this.state = StateRole.Follower;
    if (wasLeader) this.logger.info('stepped down', { term, lead });
  }

  private becomePreCandidate(): void {
    if (this.state === StateRole.Leader) throw new Error('invalid transition [leader -> pre-candidate]');
    // Pre-vote changes neither term nor vote: a partitioned node cannot inflate terms (§9.6).
    this.votes.clear();
    this.state = StateRole.PreCandidate;
    this.lead = NONE;
  }

  private becomeCandidate(): void {
    if (this.state === StateRole.Leader) throw new Error('invalid transition [leader -> candidate]');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = StateRole.Candidate;
  }

  private becomeLeader(): void {
    if (this.state === StateRole.Follower) throw new Error('invalid transition [follower -> leader]');
    this.reset(this.term);
    this.setLead(this.id);
    this.state = StateRole.Leader;
    // An empty entry of the new term: committing it commits everything before it (§5.4.2)
    // and unlocks ReadIndex and membership changes for this leader.
    this.appendEntries([{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) }]);
    this.logger.info('became leader', { term: this.term, lastIndex: this.raftLog.lastIndex() });
  }

  // ---- time -------------------------------------------------------------------------------

  /**
   * A follower forgets its leader (e.g. the leader's connections reset: it crashed). It stays
   * a follower in its term but no longer holds the leader's lease, so it grants pre-votes at
   * once and may campaign early. Only liveness changes: a pre-vote still needs a majority, and
   * voters that still hear from a live leader keep refusing.
   */
  forgetLeader(): void {
    if (this.state !== StateRole.Follower || this.lead === NONE) return;
    this.lead = NONE;
    this.campaignSoon();
  }

  /**
   * Brings this node's next campaign forward to within one spread of election timeouts; the
   * jitter keeps nodes that do this at the same moment from campaigning in the same tick and
   * splitting the vote. Liveness only: a campaign still needs a majority.
   */
  private campaignSoon(): void {
    const soon = this.randomizedElectionTimeout - 1 - this.rng.intn(this.electionSpread());
    this.electionElapsed = Math.max(this.electionElapsed, this.electionTimeout, soon);
  }

  /** Changes the timeouts (a configuration reload); takes effect from the next timeout. */
  setTimeouts(electionTick: number, heartbeatTick: number): void {
    if (heartbeatTick <= 0 || electionTick <= heartbeatTick) {
      throw new Error(`electionTick (${electionTick}) must be greater than heartbeatTick (${heartbeatTick}) > 0`);
    }
    this.electionTimeout = electionTick;
    this.heartbeatTimeout = heartbeatTick;
    this.resetRandomizedElectionTimeout();
  }

  tick(): void {
    if (this.state === StateRole.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.randomizedElectionTimeout && this.mayCampaign()) {
      this.electionElapsed = 0;
      this.timeoutsWithoutLeader++;
      this.resetRandomizedElectionTimeout();
      this.hup(this.preVote ? CampaignType.PreElection : CampaignType.Election);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum && !this.quorumActive()) {
        this.logger.info('stepping down: no quorum heard from within an election timeout', { term: this.term });
        this.becomeFollower(this.term, NONE);
        return;
      }
      for (const pr of this.prs.values()) pr.recentActive = false;
      // A transfer that has not finished within an election timeout is abandoned (§3.10).
      if (this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(this.readOnly.lastPendingContext());
    }
  }

  private quorumActive(): boolean {
    const acks = new Map<NodeId, boolean>();
    for (const id of this.conf.voters) {
      if (id === this.id || this.prs.get(id)?.recentActive) acks.set(id, true);
    }
    return voteResult(this.conf.voters, acks) === VoteResult.Won;
  }

  // ---- elections --------------------------------------------------------------------------

  private hup(t: CampaignType): void {
    if (this.state === StateRole.Leader) return;
    if (!this.mayCampaign()) return;
    this.campaign(t);
  }

  private campaign(t: CampaignType): void {
    let voteMsg: MessageType;
    let term: number;
    if (t === CampaignType.PreElection) {
      this.becomePreCandidate();
      voteMsg = MessageType.PreVote;
      term = this.term + 1; // the term we would campaign in; ours is unchanged
    } else {
      this.becomeCandidate();
      voteMsg = MessageType.Vote;
      term = this.term;
    }
    this.logger.debug('starting election', { kind: t, term });
    if (this.poll(this.id, true) === VoteResult.Won) {
      // A single-voter cluster wins at once.
      if (t === CampaignType.PreElection) this.campaign(CampaignType.Election);
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.raftLog.lastIndex();
    const lastTerm = this.raftLog.lastTerm();
    for (const id of this.conf.voters) {
      if (id === this.id) continue;
      const m = emptyMessage(voteMsg, id, this.id, term);
      m.index = lastIndex;
      m.logTerm = lastTerm;
      if (t === CampaignType.Transfer) m.context = CAMPAIGN_TRANSFER;
      this.msgs.push(m);
    }
  }

  private poll(id: NodeId, granted: boolean): VoteResult {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    return voteResult(this.conf.voters, this.votes);
  }

  // ---- the step function ----------------------------------------------------------------

  /**
   * Processes one message. Returns a reason when a local proposal, read or transfer had to be
   * dropped, so RawNode can tell its caller; null otherwise.
   */
  step(m: Message): string | null {
    const dropped = this.stepInner(m);
    this.maybeFinishLeaderRemoval();
    return dropped;
  }

  private stepInner(m: Message): string | null {
    // Term rules first (Figure 2, "Rules for Servers"), with the pre-vote and lease refinements.
    if (m.term === 0) {
      // local message
    } else if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = m.context !== null && m.context.length === 1 && m.context[0] === CAMPAIGN_TRANSFER[0];
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) {
          // We heard from a live leader within the minimum election timeout: ignore, so a
          // removed or partitioned node cannot depose it (thesis §4.2.3).
          return null;
        }
      }
      if (m.type === MessageType.PreVote) {
        // Never change term on a pre-vote.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // A granted pre-vote carries the future term; it becomes ours only when we campaign.
      } else if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) {
        this.becomeFollower(m.term, m.from);
      } else {
        // A higher term alone does not restart the election timer (Figure 2: only a leader's
        // message or a granted vote does); otherwise stale candidates could keep the one
        // up-to-date voter from ever campaigning.
        const elapsed = this.electionElapsed;
        this.becomeFollower(m.term, NONE);
        this.electionElapsed = elapsed;
      }
    } else if (m.term < this.term) {
      // The sender learns our term from the answer (Figure 2: every reply carries the
      // receiver's term). A stale leader steps down and a stale candidate catches up.
      // Staying silent, as etcd does without check-quorum, stalls the cluster when
      // membership views differ: a node whose configuration omits the stale one never
      // contacts it, so nothing else would ever tell it the term.
      if (m.type === MessageType.Heartbeat || m.type === MessageType.App) {
        this.send(emptyMessage(MessageType.AppResp, m.from, this.id));
      } else if (m.type === MessageType.PreVote || m.type === MessageType.Vote) {
        const resp = emptyMessage(m.type === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp, m.from, this.id, this.term);
        resp.reject = true;
        this.send(resp);
      }
      return null;
    }

    switch (m.type) {
      case MessageType.Hup:
        this.hup(this.preVote ? CampaignType.PreElection : CampaignType.Election);
        return null;
      case MessageType.Vote:
      case MessageType.PreVote: {
        // §5.2, §5.4.1: one vote per term, only for a log at least as up to date as ours.
        const canVote =
          this.vote === m.from ||
          (this.vote === NONE && this.lead === NONE) ||
          (m.type === MessageType.PreVote && m.term > this.term);
        const respType = m.type === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp;
        if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
          this.send(emptyMessage(respType, m.from, this.id, m.term));
          if (m.type === MessageType.Vote) {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          const resp = emptyMessage(respType, m.from, this.id, this.term);
          resp.reject = true;
          this.send(resp);
          // A pre-candidate refusing a candidate whose log is behind its own is the better
          // candidate, and has just learned that the voter it could not win over is now
          // campaigning itself, so free to grant: it campaigns again soon instead of an
          // election timeout later. After a leader's crash, the follower with the newest
          // entry may have campaigned first and been ignored by a follower that still held
          // the old leader's lease; without this, the cluster waited for its next timeout.
          if (canVote && this.state === StateRole.PreCandidate) this.campaignSoon();
        }
        return null;
      }
    }
    switch (this.state) {
      case StateRole.Leader:
        return this.stepLeader(m);
      case StateRole.Candidate:
      case StateRole.PreCandidate:
        return this.stepCandidate(m);
      case StateRole.Follower:
        return this.stepFollower(m);
    }
  }

  private stepLeader(m: Message): string | null {
    switch (m.type) {
      case MessageType.Beat:
        this.bcastHeartbeat(this.readOnly.lastPendingContext());
        return null;
      case MessageType.Prop:
        return this.handleProposal(m);
      case MessageType.ReadIndex:
        return this.handleReadIndex(m);
      case MessageType.TransferLeader:
        return this.handleTransferLeader(m);
    }

    const pr = this.prs.get(m.from);
    if (!pr) return null;
    switch (m.type) {
      case MessageType.AppResp:
        pr.recentActive = true;
        if (m.reject) {
          let nextProbe = m.rejectHint;
          if (m.logTerm > 0) nextProbe = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm).index;
          if (pr.maybeDecrTo(m.index, nextProbe)) {
            if (pr.state === ProgressState.Replicate) pr.becomeProbe();
            this.sendAppend(m.from);
          }
        } else {
          const wasPaused = pr.isPaused();
          if (pr.maybeUpdate(m.index)) {
            if (pr.state === ProgressState.Probe) {
              pr.becomeReplicate();
            } else if (pr.state === ProgressState.Snapshot && pr.match >= pr.pendingSnapshot) {
              pr.becomeProbe();
              pr.becomeReplicate();
            } else if (pr.state === ProgressState.Replicate) {
              pr.inflights.freeLE(m.index);
            }
            // A new commit index reaches the followers with the next append or heartbeat, or
            // when the driver calls broadcastCommit(): no round of empty appends per commit.
            this.maybeCommit();
            if (wasPaused) this.sendAppend(m.from);
            // Keep the pipeline full: send as much as the inflight window allows.
            while (this.maybeSendAppend(m.from, false)) {
              /* loop */
            }
            if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) {
              this.sendTimeoutNow(m.from);
            }
          }
        }
        return null;
      case MessageType.HeartbeatResp: {
        pr.recentActive = true;
        pr.probeSent = false;
        if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.match < this.raftLog.lastIndex() || pr.state === ProgressState.Probe) this.sendAppend(m.from);
        if (m.context === null || m.context.length === 0) return null;
        const acks = this.readOnly.recvAck(m.from, m.context);
        if (acks === null || voteResult(this.conf.voters, acks) !== VoteResult.Won) return null;
        for (const rs of this.readOnly.advance(m.context)) this.respondToReadIndex(rs.req, rs.index);
        return null;
      }
      case MessageType.SnapStatus:
        if (pr.state !== ProgressState.Snapshot) return null;
        if (m.reject) pr.pendingSnapshot = 0;
        // Either way, probe: on success wait for the follower's reply to the snapshot,
        // on failure retry from a fresh probe.
        pr.becomeProbe();
        pr.probeSent = true;
        return null;
      case MessageType.Unreachable:
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        return null;
    }
    return null;
  }

  private handleProposal(m: Message): string | null {
    if (m.entries.length === 0) return 'empty proposal';
    if (this.leadTransferee !== NONE) {
      return `leadership is being transferred to node ${this.leadTransferee}`;
    }
    let conf = this.conf;
    for (const e of m.entries) {
      if (e.type !== EntryType.ConfChange) continue;
      // One membership change at a time (thesis §4.1), and only once this leader has
      // committed an entry of its own term (the single-server change fix, thesis §4.1 errata).
      if (this.lastConfIndex() > this.raftLog.committed || conf !== this.conf) {
        return 'another membership change is in progress; retry once it has committed';
      }
      if (!this.committedEntryInCurrentTerm()) {
        return 'the leader has not yet committed an entry in its term; retry shortly';
      }
      let cc;
      try {
        cc = decodeConfChange(e.data);
      } catch (err) {
        return `invalid membership change: ${(err as Error).message}`;
      }
      const invalid = validateConfChange(conf, cc);
      if (invalid) return invalid;
      conf = applyConfChange(conf, cc);
    }
    this.appendEntries(m.entries);
    this.needBroadcast = true;
    const proposer = m.from === this.id ? undefined : this.prs.get(m.from);
    if (proposer) {
      proposer.awaitedCommit = this.raftLog.lastIndex();
      this.proposersWaiting = true;
    }
    return null;
  }

  private handleReadIndex(m: Message): string | null {
    // Until this leader commits an entry of its term its commit index may lag the
    // cluster's; reads wait for that (thesis §6.4, step 1) — a lone voter included: after a
    // crash its durable commit index may be behind what it had already committed.
    if (!this.committedEntryInCurrentTerm()) {
      this.pendingReadIndexMessages.push(m);
      return null;
    }
    if (this.conf.voters.length === 1 && this.conf.voters[0] === this.id) {
      this.respondToReadIndex(m, this.raftLog.committed);
      return null;
    }
    this.readOnly.addRequest(this.raftLog.committed, m);
    this.readOnly.recvAck(this.id, m.context);
    this.bcastHeartbeat(m.context);
    return null;
  }

  private respondToReadIndex(req: Message, index: number): void {
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index, context: req.context ?? new Uint8Array(0) });
      return;
    }
    const resp = emptyMessage(MessageType.ReadIndexResp, req.from, this.id);
    resp.index = index;
    resp.context = req.context;
    this.send(resp);
  }

  private handleTransferLeader(m: Message): string | null {
    const target = m.from;
    if (target === this.id) return null;
    const pr = this.prs.get(target);
    if (!pr || pr.isLearner) return `node ${target} is not a voter and cannot become leader`;
    if (this.leadTransferee !== NONE) {
      if (this.leadTransferee === target) return null;
      this.abortLeaderTransfer();
    }
    // The transfer must complete within one election timeout (§3.10).
    this.electionElapsed = 0;
    this.leadTransferee = target;
    this.logger.info('transferring leadership', { term: this.term, target });
    if (pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(target);
    else this.sendAppend(target);
    return null;
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send(emptyMessage(MessageType.TimeoutNow, to, this.id));
  }

  private stepCandidate(m: Message): string | null {
    const myRespType = this.state === StateRole.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.Prop:
        return 'no leader: an election is in progress';
      case MessageType.ReadIndex:
        return 'no leader: an election is in progress';
      case MessageType.TransferLeader:
        return 'no leader: an election is in progress';
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return null;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return null;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return null;
      case MessageType.VoteResp:
      case MessageType.PreVoteResp: {
        if (m.type !== myRespType) return null;
        const res = this.poll(m.from, !m.reject);
        if (res === VoteResult.Won) {
          if (this.state === StateRole.PreCandidate) this.campaign(CampaignType.Election);
          else {
            this.becomeLeader();
            this.needBroadcast = true;
          }
        } else if (res === VoteResult.Lost) {
          this.becomeFollower(this.term, NONE);
        }
        return null;
      }
    }
    return null;
  }

  private stepFollower(m: Message): string | null {
    switch (m.type) {
      case MessageType.Prop:
        if (this.lead === NONE) return 'no leader is known; retry once one is elected';
        this.forward(m);
        return null;
      case MessageType.App:
        this.electionElapsed = 0;
        this.setLead(m.from);
        this.handleAppendEntries(m);
        return null;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.setLead(m.from);
        this.handleHeartbeat(m);
        return null;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.setLead(m.from);
        this.handleSnapshot(m);
        return null;
      case MessageType.TransferLeader:
        if (this.lead === NONE) return 'no leader is known; retry once one is elected';
        this.forward(m);
        return null;
      case MessageType.TimeoutNow:
        this.logger.info('campaigning at the leader\'s request (leadership transfer)', { term: this.term + 1 });
        this.hup(CampaignType.Transfer);
        return null;
      case MessageType.ReadIndex:
        if (this.lead === NONE) return 'no leader is known; retry once one is elected';
        this.forward(m);
        return null;
      case MessageType.ReadIndexResp:
        this.readStates.push({ index: m.index, context: m.context ?? new Uint8Array(0) });
        return null;
    }
    return null;
  }

  private forward(m: Message): void {
    this.msgs.push({ ...m, to: this.lead, from: m.from === NONE ? this.id : m.from, term: 0 });
  }

  // ---- follower handlers ----------------------------------------------------------------------

  private handleAppendEntries(m: Message): void {
    if (m.index < this.raftLog.committed) {
      const resp = emptyMessage(MessageType.AppResp, m.from, this.id);
      resp.index = this.raftLog.committed;
      this.send(resp);
      return;
    }
    const res = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (res !== null) {
      if (res.from > 0) this.onLogReplacedFrom(res.from);
      const resp = emptyMessage(MessageType.AppResp, m.from, this.id);
      resp.index = res.lastNew;
      this.send(resp);
      return;
    }
    // Reject with a hint: the last index at or before m.index whose term is <= m.logTerm,
    // so the leader can skip a whole conflicting term in one round trip.
    const hint = this.raftLog.findConflictByTerm(Math.min(m.index, this.raftLog.lastIndex()), m.logTerm);
    const resp = emptyMessage(MessageType.AppResp, m.from, this.id);
    resp.index = m.index;
    resp.reject = true;
    resp.rejectHint = hint.index;
    resp.logTerm = hint.term;
    this.send(resp);
  }

  private handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(m.commit);
    const resp = emptyMessage(MessageType.HeartbeatResp, m.from, this.id);
    resp.context = m.context;
    this.send(resp);
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (!s) return;
    const resp = emptyMessage(MessageType.AppResp, m.from, this.id);
    if (this.restore(s)) {
      this.logger.info('restored snapshot from leader', { index: s.metadata.index, term: s.metadata.term, from: m.from });
      resp.index = this.raftLog.lastIndex();
    } else {
      resp.index = this.raftLog.committed;
    }
    this.send(resp);
  }

  /** Installs a snapshot; false if it brings nothing new. */
  private restore(s: Snapshot): boolean {
    const { index, term } = s.metadata;
    if (index <= this.raftLog.committed) return false;
    if (this.state !== StateRole.Follower) {
      // Defensive: only a follower installs snapshots.
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    if (this.raftLog.matchTerm(index, term)) {
      // We already have the entry: just fast-forward the commit index.
      this.raftLog.commitTo(index);
      return false;
    }
    this.raftLog.restore(s);
    this.baseConf = cloneConfState(s.metadata.confState);
    this.confHistory = [];
    this.setConf(cloneConfState(s.metadata.confState));
    return true;
  }

  // ---- leader replication -----------------------------------------------------------------------

  private appendEntries(es: Entry[]): void {
    let li = this.raftLog.lastIndex();
    // New objects: a proposal's entries may be shared with a message that is delivered twice.
    const ents = es.map((e) => ({ term: this.term, index: ++li, type: e.type, data: e.data }));
    this.raftLog.append(ents);
    this.recordConfEntries(ents);
  }

  /** Broadcasts pending appends (batched proposals, a new commit index): once per Ready. */
  flushBroadcast(): void {
    if (this.needBroadcast && this.state === StateRole.Leader) this.bcastAppend();
    this.needBroadcast = false;
  }

  private bcastAppend(): void {
    for (const id of this.prs.keys()) this.sendAppend(id);
  }

  /** Whether some follower that could take a message has not been sent the current commit index. */
  commitBroadcastPending(): boolean {
    if (this.state !== StateRole.Leader) return false;
    const committed = this.raftLog.committed;
    for (const pr of this.prs.values()) {
      if (pr.sentCommit < committed && !pr.isPaused()) return true;
    }
    return false;
  }

  /**
   * Tells the followers that lack it the current commit index (an append, empty if there is
   * nothing new to send). Commit advances are not broadcast on their own: the next append or
   * heartbeat carries them, and under load there always is a next append. The driver calls
   * this shortly after a commit so that followers apply promptly when the load stops.
   */
  broadcastCommit(): void {
    if (this.state !== StateRole.Leader) return;
    const committed = this.raftLog.committed;
    for (const [id, pr] of this.prs) {
      if (pr.sentCommit < committed) this.maybeSendAppend(id, true);
    }
  }

  private bcastHeartbeat(ctx: Uint8Array | null): void {
    for (const [id, pr] of this.prs) {
      const m = emptyMessage(MessageType.Heartbeat, id, this.id);
      // Never tell a follower to commit beyond what it is known to hold.
      m.commit = Math.min(pr.match, this.raftLog.committed);
      pr.sentCommit = Math.max(pr.sentCommit, m.commit);
      m.context = ctx;
      this.send(m);
    }
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /** Sends an append (or a snapshot) to `to` if its progress allows; true if something was sent. */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    let prevTerm: number;
    let ents: Entry[];
    try {
      prevTerm = this.raftLog.term(prevIndex);
      ents = this.raftLog.entries(pr.next, this.maxSizePerMsg);
    } catch (e) {
      if (e instanceof CompactedError) return this.sendSnapshot(to, pr);
      throw e;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    const m = emptyMessage(MessageType.App, to, this.id);
    m.index = prevIndex;
    m.logTerm = prevTerm;
    m.entries = ents;
    m.commit = this.raftLog.committed;
    pr.sentCommit = m.commit;
    this.send(m);
    pr.sentEntries(ents.length > 0 ? ents[ents.length - 1].index : null);
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false; // don't ship a snapshot to a peer that may be down
    const snap = this.raftLog.snapshot();
    if (snap.metadata.index === 0) return false;
    const m = emptyMessage(MessageType.Snap, to, this.id);
    m.snapshot = snap;
    pr.becomeSnapshot(snap.metadata.index);
    this.logger.info('sending snapshot', { to, index: snap.metadata.index, term: snap.metadata.term });
    this.send(m);
    return true;
  }

  /**
   * Advances the commit index to what a majority of voters holds (current term only). A
   * member whose forwarded proposal has now committed is told at once: its client waits for
   * that member to apply the entry, while other commit advances travel lazily (broadcastCommit).
   */
  maybeCommit(): boolean {
    const mci = committedIndex(this.conf.voters, (id) => this.matchOf(id));
    if (!this.raftLog.maybeCommit(mci, this.term)) return false;
    if (this.proposersWaiting) this.tellProposers();
    if (this.hasDeparting) this.finishRemovals();
    if (this.pendingReadIndexMessages.length > 0 && this.committedEntryInCurrentTerm()) {
      const pending = this.pendingReadIndexMessages;
      this.pendingReadIndexMessages = [];
      for (const m of pending) this.handleReadIndex(m);
    }
    return true;
  }

  /** Sends the commit index to each member whose forwarded proposal it now covers. */
  private tellProposers(): void {
    const committed = this.raftLog.committed;
    let waiting = false;
    for (const [id, pr] of this.prs) {
      if (pr.awaitedCommit === 0) continue;
      if (pr.awaitedCommit <= committed && pr.sentCommit < committed) this.maybeSendAppend(id, true);
      if (pr.sentCommit >= pr.awaitedCommit) pr.awaitedCommit = 0;
      else waiting = true;
    }
    this.proposersWaiting = waiting;
  }

  /** The driver reports entries durable up to `index`: the leader may now count itself. */
  onStable(): void {
    if (this.state === StateRole.Leader) this.maybeCommit();
    this.maybeFinishLeaderRemoval();
  }

  // ---- membership -------------------------------------------------------------------------------

  /** Records configuration entries as they enter the log; the latest one is in force (§4.1). */
  private recordConfEntries(ents: Entry[]): void {
    let changed = false;
    for (const e of ents) {
      if (e.type !== EntryType.ConfChange) continue;
      const next = applyConfChange(this.conf, decodeConfChange(e.data));
      this.confHistory.push({ index: e.index, conf: next });
      this.conf = next;
      changed = true;
    }
    if (changed) this.setConf(this.conf);
  }

  /** Entries from `from` on were replaced: forget configurations they carried, then record the new ones. */
  private onLogReplacedFrom(from: number): void {
    let popped = false;
    while (this.confHistory.length > 0 && this.confHistory[this.confHistory.length - 1].index >= from) {
      this.confHistory.pop();
      popped = true;
    }
    if (popped) {
      this.conf = this.confHistory.length > 0 ? this.confHistory[this.confHistory.length - 1].conf : this.baseConf;
    }
    const added = this.raftLog.slice(from, this.raftLog.lastIndex() + 1);
    const before = this.conf;
    this.recordConfEntries(added);
    if (popped && this.conf === before) this.setConf(this.conf);
  }

  private setConf(conf: ConfState): void {
    this.conf = conf;
    const prev = new Set(this.prs.keys());
    this.syncProgress();
    const changed = [...this.prs.keys()].some((id) => !prev.has(id)) || prev.size !== this.prs.size;
    if (this.started) this.logger.info('membership changed', { voters: conf.voters, learners: conf.learners, term: this.term });
    if (this.state !== StateRole.Leader) return;
    if (this.leadTransferee !== NONE && !conf.voters.includes(this.leadTransferee)) this.abortLeaderTransfer();
    if (changed || this.maybeCommit()) this.needBroadcast = true;
  }

  /**
   * Nodes that the latest, not yet committed, configuration removes. The leader keeps
   * replicating to them (never counting them in a quorum) until the removal commits, so a
   * removed node receives the entry that removes it and stops campaigning.
   */
  private departing(): NodeId[] {
    let committed = this.baseConf;
    for (let i = this.confHistory.length - 1; i >= 0; i--) {
      if (this.confHistory[i].index <= this.raftLog.committed) {
        committed = this.confHistory[i].conf;
        break;
      }
    }
    if (committed === this.conf) return [];
    const now = new Set<NodeId>([...this.conf.voters, ...this.conf.learners]);
    return [...committed.voters, ...committed.learners].filter((id) => !now.has(id));
  }

  /**
   * A removal may have committed: each node it removed is told the new commit index (so it
   * knows its removal is final and stops campaigning, see mayCampaign), then dropped.
   */
  private finishRemovals(): void {
    const members = this.replicatedTo(this.departing());
    for (const id of this.prs.keys()) {
      if (!members.has(id)) this.maybeSendAppend(id, true);
    }
    this.syncProgress();
  }

  /** The nodes the leader replicates to: the latest configuration's members and `departing`. */
  private replicatedTo(departing: NodeId[]): Set<NodeId> {
    return new Set<NodeId>([...this.conf.voters, ...this.conf.learners, ...departing]);
  }

  private syncProgress(): void {
    const departing = this.departing();
    const members = this.replicatedTo(departing);
    for (const id of [...this.prs.keys()]) {
      if (!members.has(id)) this.prs.delete(id);
    }
    this.hasDeparting = departing.length > 0;
    const next = this.raftLog.lastIndex() + 1;
    for (const id of members) {
      if (id === this.id) continue;
      const isLearner = !this.conf.voters.includes(id);
      const pr = this.prs.get(id);
      if (pr) {
        pr.isLearner = isLearner;
      } else {
        const np = new Progress(next, this.maxInflight, isLearner);
        np.recentActive = true; // a new member is given one election timeout to show up
        this.prs.set(id, np);
      }
    }
  }

  /**
   * A leader whose removal has committed hands over and steps down (thesis §4.2.2): it tells
   * the others the new commit index and asks the most up-to-date voter to campaign at once.
   */
  private maybeFinishLeaderRemoval(): void {
    if (this.state !== StateRole.Leader || this.promotable()) return;
    if (this.raftLog.committed < this.lastConfIndex()) return;
    this.bcastAppend();
    let best: NodeId = NONE;
    let bestMatch = -1;
    for (const id of this.conf.voters) {
      const m = this.matchOf(id);
      if (m > bestMatch) {
        best = id;
        bestMatch = m;
      }
    }
    if (best !== NONE && bestMatch === this.raftLog.lastIndex()) this.sendTimeoutNow(best);
    this.logger.info('removed from the cluster: stepping down', { term: this.term, successor: best });
    this.becomeFollower(this.term, NONE);
  }

  // ---- plumbing -----------------------------------------------------------------------------

  private send(m: Message): void {
    m.from = this.id;
    if (
      m.type === MessageType.Vote ||
      m.type === MessageType.VoteResp ||
      m.type === MessageType.PreVote ||
      m.type === MessageType.PreVoteResp
    ) {
      if (m.term === 0) throw new Error(`term should be set when sending ${MessageType[m.type]}`);
    } else if (m.type !== MessageType.Prop && m.type !== MessageType.ReadIndex) {
      m.term = this.term;
    }
    this.msgs.push(m);
  }
}
