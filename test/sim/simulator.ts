import { ProgressState, ProposalDroppedError } from '../../agent/raft/rawnode';
import { SeededRng } from '../../agent/raft/rng';
import { ConfChange, ConfChangeType, Message, MessageType, NodeId, StateRole } from '../../agent/raft/types';
import { EventKind, EventQueue, SimEvent, UNITS_PER_TICK } from './events';
import { InvariantViolation, SafetyChecker } from './invariants';
import { encodeWrite, KEYS } from './kv';
import { describeMessage, FaultRates, Network, NO_FAULTS } from './network';
import { DriverEnv, NodeDriver } from './node_driver';
import { chaosTick, ClusterOps, drawMinVoters } from './workload';

/**
 * A seeded discrete-event simulation of one whole cluster. Everything — message latency
 * and faults, ticks, client traffic, crashes, membership changes, the cores' own election
 * jitter — draws from one SeededRng, so a seed names exactly one history and
 * `runSeed(seed, opts)` replays it step for step.
 *
 * A run has two phases: CHAOS_TICKS of faults and traffic, with every safety property
 * checked on every step (see invariants.ts); then every fault is healed and the cluster
 * must show it is live again within LIVENESS_TICKS.
 */

export const ELECTION_TICK = 10;
export const HEARTBEAT_TICK = 1;
/** Length of the chaos phase: some thirty election timeouts, enough for many leaders per run. */
export const CHAOS_TICKS = 300;
/**
 * After healing, a leader must exist and a fresh write must be applied by every voter within
 * this many ticks. The bound allows for a few split votes (election timeouts are randomized
 * in [10, 13) ticks, widening to [10, 20) while no leader is heard from), a pre-vote round that must wait for leases to expire, a transfer that
 * must time out, and snapshot catch-up of lagging voters: 20 election timeouts. Over 40,000
 * seeds the slowest recovery took 159 ticks, in a run without pre-vote where stale candidates
 * kept resetting the election timer of the only voter with an up-to-date log.
 */
export const LIVENESS_TICKS = 20 * ELECTION_TICK;
/** A liveness write not applied everywhere after this long is proposed again (it may have been lost with its leader). */
const PROBE_RETRY_TICKS = 3 * ELECTION_TICK;
/** Chances that a leader elected during the chaos phase is isolated within three ticks, or crashes within two. */
const LEADER_ISOLATE_CHANCE = 0.35;
const LEADER_CRASH_CHANCE = 0.15;
/** Chance that a new leader lacking another node's uncommitted entry is isolated at once (see becameLeader). */
const FIGURE8_DIVERGE_CHANCE = 0.8;
/** Chance that a leader is isolated at the moment of Figure 8 (see figure8Moment). */
const FIGURE8_ISOLATE_CHANCE = 0.5;
const TERM_FACTOR = 2 ** 21;
/**
 * Removing the leader of a two-voter configuration stalls the cluster for good if a fault
 * strikes before the other voter holds the change: the leader no longer counts as a voter,
 * the other one still needs its vote and cannot get it with a shorter log. etcd documents
 * the same hazard ("it is unsafe to remove a member from a two member cluster"). Operators
 * do it only on a healthy pair, so the simulator keeps the cluster quiet until the change
 * commits, and fails the run if that takes longer than this.
 */
const QUIET_LIMIT_TICKS = 5 * ELECTION_TICK;
/** Share of seeds whose nodes are driven as the agent drives them (see DriverEnv.agentLoop). */
const AGENT_LOOP_CHANCE = 0.5;
/** A disk write usually takes up to half a tick; a slow one up to three ticks. */
const WRITE_UNITS = UNITS_PER_TICK / 2;
const SLOW_WRITE_UNITS = 3 * UNITS_PER_TICK;
const SLOW_WRITE_CHANCE = 0.1;
/** A run that takes more steps than this has gone wrong (a message storm). */
const MAX_STEPS = 3_000_000;

export interface SimOptions {
  /** Founding voters: 3, 5 or 7. */
  nodes: number;
  chaosTicks?: number;
  /** Receives the event trace; tracing costs nothing when absent. */
  trace?: (line: string) => void;
}

export interface SeedStats {
  leaders: number;
  writes: number;
  readsServed: number;
  crashes: number;
  confChanges: number;
  /** Membership changes that removed the node leading at the time they were applied. */
  leaderRemovals: number;
  snapshotsSent: number;
  messages: number;
  /** Ticks from healing to the first fresh write applied on all voters. */
  recoveryTicks: number;
  /** 1 when the nodes ran the agent loop (DriverEnv.agentLoop), else 0. */
  agentLoop: number;
  /** Agent loop: leader messages sent before the write of their Ready. */
  sentBeforeWrite: number;
  /** Agent loop: messages, ticks and client requests a node took while its write was in flight. */
  steppedWhileWriting: number;
  /** Leaders isolated at a moment of Figure 8 (lacking another's entry, or holding an older term's on a quorum). */
  figure8Isolations: number;
}

export interface SeedResult {
  seed: number;
  nodes: number;
  steps: number;
  /** Null when the run kept every invariant and recovered in time. */
  failure: string | null;
  /** The error's stack when the failure was an exception in the core or the simulator. */
  stack: string | null;
  stats: SeedStats;
}

export function runSeed(seed: number, opts: SimOptions): SeedResult {
  return new Simulation(seed, opts).run();
}

/** The command that replays one seed exactly, with its trace. */
export function reproduceCommand(r: Pick<SeedResult, 'seed' | 'nodes'>, chaosTicks?: number): string {
  const t = chaosTicks === undefined ? '' : ` --ticks ${chaosTicks}`;
  return `npm run sim -- --seeds ${r.seed}..${r.seed} --nodes ${r.nodes}${t} --trace`;
}

class Simulation implements ClusterOps {
  readonly rng: SeededRng;
  readonly size: number;
  readonly minVoters: number;
  private readonly queue = new EventQueue();
  private readonly network: Network;
  private readonly checker = new SafetyChecker(KEYS);
  private readonly drivers = new Map<NodeId, NodeDriver>();
  private readonly env: DriverEnv;
  private readonly trace: ((line: string) => void) | null;
  private readonly chaosEnd: number;
  private steps = 0;
  private nextNodeId: NodeId;
  private nextWriteId = 1;
  private nextReadId = 1;
  private healed = false;
  /** Index of the newest membership change any node applied (applies happen in index order). */
  private lastConfChangeIndex = 0;
  /** Paused nodes and the time they resume. */
  private readonly paused = new Map<NodeId, number>();
  /** The quiet change under way (see QUIET_LIMIT_TICKS): its entry, and when it must have committed. */
  private quietChange: { index: number; term: number; until: number } | null = null;
  /** Entries (index * TERM_FACTOR + term) in which a leader proposed to remove itself. */
  private readonly leaderRemovals = new Set<number>();
  /** Liveness writes: id -> the nodes that applied it. */
  private readonly probes = new Map<number, Set<NodeId>>();
  private lastProbeTick = -Infinity;
  private recoveredAt = -1;
  private readonly stats: SeedStats = {
    leaders: 0,
    writes: 0,
    readsServed: 0,
    crashes: 0,
    confChanges: 0,
    leaderRemovals: 0,
    snapshotsSent: 0,
    messages: 0,
    recoveryTicks: -1,
    agentLoop: 0,
    sentBeforeWrite: 0,
    steppedWhileWriting: 0,
    figure8Isolations: 0,
  };

  constructor(
    private readonly seed: number,
    opts: SimOptions,
  ) {
    this.rng = new SeededRng(seed);
    this.size = opts.nodes;
    this.nextNodeId = opts.nodes + 1;
    this.trace = opts.trace ?? null;
    this.chaosEnd = (opts.chaosTicks ?? CHAOS_TICKS) * UNITS_PER_TICK;
    this.network = new Network(this.rng, this.queue);
    const sim = this;
    const raftConfig = this.drawRaftConfig();
    const agentLoop = this.rng.chance(AGENT_LOOP_CHANCE);
    this.minVoters = drawMinVoters(this.rng, this.size);
    if (this.trace !== null) {
      this.trace(`driver: ${agentLoop ? 'agent loop (asynchronous writes)' : 'Ready contract (synchronous writes)'}; membership changes keep ${this.minVoters}+ voters`);
    }
    this.env = {
      checker: this.checker,
      rng: this.rng,
      raftConfig,
      agentLoop,
      writeStarted: (n) => sim.queue.push(sim.queue.now + sim.writeLatency(), EventKind.WriteDone, n.id, null, 0, n.incarnation),
      commitFlushDue: (n) => sim.queue.push(sim.queue.now + 1 + sim.rng.intn(3), EventKind.CommitFlush, n.id, null, 0, n.incarnation),
      trace: this.trace,
      send: (m, src, inc) => sim.network.send(m, src, inc),
      confChangeApplied: (index, term, cc) => sim.confChangeApplied(index, term, cc),
      becameLeader: (n) => sim.becameLeader(n),
      writeApplied: (node, writeId) => sim.probes.get(writeId)?.add(node),
    };
  }

  run(): SeedResult {
    let failure: string | null = null;
    let stack: string | null = null;
    try {
      this.boot();
      this.loop();
      if (this.recoveredAt < 0) failure = this.livenessFailure();
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      const where = `step ${this.steps}, tick ${this.tickLabel()}`;
      if (e instanceof InvariantViolation) failure = `${e.message} (${where})`;
      else {
        failure = `exception: ${e.name}: ${e.message} (${where})`;
        stack = e.stack ?? null;
      }
    }
    if (failure !== null) this.log(`FAILURE: ${failure}`);
    this.stats.readsServed = this.checker.readsServed;
    this.stats.leaders = this.checker.leaderTerms;
    this.stats.messages = this.network.sent;
    this.stats.agentLoop = this.env.agentLoop ? 1 : 0;
    for (const n of this.drivers.values()) this.stats.sentBeforeWrite += n.sentBeforeWrite;
    return { seed: this.seed, nodes: this.size, steps: this.steps, failure, stack, stats: this.stats };
  }

  /**
   * Flow-control limits and optional features vary by seed: tiny messages and windows make a
   * new leader replicate old entries one at a time (the Figure 8 situation), tiny apply batches
   * split committed entries over many Readies, and turning pre-vote or check-quorum off lets
   * partitioned nodes disrupt terms.
   */
  private drawRaftConfig(): DriverEnv['raftConfig'] {
    const rng = this.rng;
    const cfg = {
      electionTick: ELECTION_TICK,
      heartbeatTick: HEARTBEAT_TICK,
      maxSizePerMsg: [1, 16, 1024 * 1024][rng.intn(3)],
      maxInflightMsgs: [1, 4, 256][rng.intn(3)],
      maxCommittedSizePerReady: [1, 64 * 1024 * 1024][rng.intn(2)],
      preVote: rng.chance(0.5),
      checkQuorum: rng.chance(0.5),
    };
    if (this.trace !== null) this.trace(`raft config: ${JSON.stringify(cfg)}`);
    return cfg;
  }

  private boot(): void {
    const voters: NodeId[] = [];
    for (let id = 1; id <= this.size; id++) voters.push(id);
    for (const id of voters) {
      const n = this.addDriver(id);
      n.bootstrap(voters);
    }
    for (const id of voters) this.startDriver(this.drivers.get(id)!);
    this.queue.push(UNITS_PER_TICK / 2, EventKind.World, 0);
  }

  private addDriver(id: NodeId): NodeDriver {
    const n = new NodeDriver(id, this.env);
    this.drivers.set(id, n);
    return n;
  }

  /** Starts a node for the first time; its ticks begin at a random phase within a tick. */
  private startDriver(n: NodeDriver): void {
    n.start();
    this.queue.push(this.queue.now + 1 + this.rng.intn(UNITS_PER_TICK), EventKind.Tick, n.id);
  }

  private loop(): void {
    const deadline = this.chaosEnd + LIVENESS_TICKS * UNITS_PER_TICK;
    for (;;) {
      const ev = this.queue.pop();
      if (ev === undefined || ev.time > deadline || this.recoveredAt >= 0) return;
      if (++this.steps > MAX_STEPS) throw new InvariantViolation('step-budget', `more than ${MAX_STEPS} steps: a message storm?`);
      switch (ev.kind) {
        case EventKind.Deliver:
          this.deliver(ev);
          break;
        case EventKind.Tick:
          this.tick(ev.node);
          break;
        case EventKind.World:
          this.world();
          break;
        case EventKind.Shutdown:
          this.shutdown(ev.node);
          break;
        case EventKind.Crash: {
          const n = this.drivers.get(ev.node)!;
          if (n.raw !== null && n.incarnation === ev.inc && !this.healed && !this.quiet()) this.crash(n);
          break;
        }
        case EventKind.LeaderLost:
          this.leaderLost(ev.node, ev.src);
          break;
        case EventKind.WriteDone:
          this.writeDone(ev);
          break;
        case EventKind.CommitFlush: {
          const n = this.drivers.get(ev.node)!;
          if (n.raw !== null && n.incarnation === ev.inc) n.flushCommit();
          break;
        }
        case EventKind.Isolate:
          if (!this.healed && !this.quiet()) {
            if (this.trace !== null) this.log(`isolate n${ev.node}`);
            this.isolate(ev.node);
          }
          break;
      }
    }
  }

  private deliver(ev: SimEvent): void {
    const m = ev.msg!;
    const to = this.drivers.get(m.to);
    const from = this.drivers.get(ev.src);
    const senderAlive = from !== undefined && from.raw !== null && from.incarnation === ev.inc;
    const deliverable = !ev.lost && to !== undefined && to.raw !== null && !this.network.isBlocked(ev.src, m.to);
    // A transport notices a refused connection or a failed snapshot stream, not a lost datagram;
    // a snapshot's fate is always reported, as etcd's transport does.
    const feedback = senderAlive && (m.type === MessageType.Snap || (!deliverable && !ev.lost));
    // A paused process neither reads its sockets nor hears from its transport until it resumes.
    const wait = Math.max(deliverable ? this.pausedUntil(m.to) : 0, feedback ? this.pausedUntil(ev.src) : 0);
    if (wait > this.queue.now) {
      this.queue.postpone(ev, wait);
      return;
    }
    if (!deliverable) {
      if (this.trace !== null) this.log(`drop ${describeMessage(m)}${ev.lost ? ' (lost)' : ''}`);
      if (!feedback) return;
      if (m.type === MessageType.Snap) from!.raw!.reportSnapshot(m.to, false);
      else from!.raw!.reportUnreachable(m.to);
      from!.handleReadies();
      return;
    }
    if (this.trace !== null) this.log(`deliver ${describeMessage(m)}`);
    if (to!.writeInFlight) this.stats.steppedWhileWriting++;
    to!.raw!.step(m);
    to!.handleReadies();
    if (m.type === MessageType.AppResp && !m.reject && this.figure8Moment(to!, m) && this.rng.chance(FIGURE8_ISOLATE_CHANCE)) {
      if (this.trace !== null) this.log(`n${to!.id} holds an older term's entry on a quorum, not yet one of its own: isolate it`);
      this.stats.figure8Isolations++;
      this.isolate(to!.id);
    }
    if (m.type === MessageType.Snap) {
      this.stats.snapshotsSent++;
      if (senderAlive) {
        from.raw!.reportSnapshot(m.to, true);
        from.handleReadies();
      }
    }
  }

  /** Time a disk write takes, in units. */
  private writeLatency(): number {
    return 1 + this.rng.intn(this.rng.chance(SLOW_WRITE_CHANCE) ? SLOW_WRITE_UNITS : WRITE_UNITS);
  }

  /** A write became durable; a paused process learns of it only when it resumes. */
  private writeDone(ev: SimEvent): void {
    const n = this.drivers.get(ev.node)!;
    if (n.raw === null || n.incarnation !== ev.inc || !n.writeInFlight) return;
    const wait = this.pausedUntil(n.id);
    if (wait > this.queue.now) {
      this.queue.postpone(ev, wait);
      return;
    }
    if (this.trace !== null) this.log(`n${n.id} write done`);
    n.completeWrite();
  }

  private tick(id: NodeId): void {
    const n = this.drivers.get(id)!;
    if (n.decommissioned) return;
    this.queue.push(this.queue.now + UNITS_PER_TICK, EventKind.Tick, id);
    const raw = n.raw;
    if (raw === null || this.pausedUntil(id) > this.queue.now) return; // a paused process's clock stands still
    if (n.writeInFlight) this.stats.steppedWhileWriting++;
    raw.tick();
    n.handleReadies();
    if (n.raw !== raw) return; // it crashed while writing
    // While a write is in flight the core's commit index may be ahead of the durable log.
    if (n.writeInFlight) return;
    // The commit index must not go backwards between Readies either.
    const st = raw.status();
    this.checker.commitReported(id, st.hardState.commit, st.hardState.term);
  }

  /** Once per tick: chaos, or after it the healing and the liveness check. */
  private world(): void {
    const now = this.queue.now;
    this.queue.push(now + UNITS_PER_TICK, EventKind.World, 0);
    const q = this.quietChange;
    if (q !== null && now > q.until) {
      throw new InvariantViolation(
        'liveness',
        `the leader's removal from a two-voter configuration, entry (${q.index}, t${q.term}), did not commit within ${QUIET_LIMIT_TICKS} quiet ticks`,
      );
    }
    if (now < this.chaosEnd) {
      chaosTick(this);
      return;
    }
    if (!this.healed) this.heal();
    this.checkLiveness();
  }

  /** Ends every fault: the network becomes reliable and every crashed member restarts. */
  private heal(): void {
    this.healed = true;
    this.log('HEAL: faults end; liveness check starts');
    this.network.faults = NO_FAULTS;
    this.network.healPartitions();
    this.paused.clear();
    for (const n of this.drivers.values()) {
      if (n.decommissioned) continue;
      n.tornWritePending = false;
      if (n.raw === null) this.restart(n);
      else this.setTimeouts(n, ELECTION_TICK, HEARTBEAT_TICK);
    }
  }

  /** Succeeds once some fresh write is applied by every voter of the current leader's configuration. */
  private checkLiveness(): void {
    const l = this.leader();
    if (l === null) return;
    for (const appliedBy of this.probes.values()) {
      if (l.confState.voters.every((v) => appliedBy.has(v))) {
        this.recoveredAt = this.queue.now;
        this.stats.recoveryTicks = Math.ceil((this.recoveredAt - this.chaosEnd) / UNITS_PER_TICK);
        this.log(`RECOVERED after ${this.stats.recoveryTicks} ticks`);
        return;
      }
    }
    const tick = this.queue.now / UNITS_PER_TICK;
    if (tick - this.lastProbeTick < PROBE_RETRY_TICKS) return;
    const id = this.nextWriteId++;
    this.step(`probe write ${id} at n${l.id}`, l, () => {
      if (l.raw!.propose(encodeWrite(id, 0)) === null) return;
      this.probes.set(id, new Set());
      this.lastProbeTick = tick;
    });
  }

  private livenessFailure(): string {
    const l = this.leader();
    const up = [...this.drivers.values()].filter((n) => n.up).map((n) => `n${n.id}:${n.role}@t${n.hard.term}/c${n.hard.commit}/a${n.sm.applied}`);
    if (l === null) return `[liveness] no leader ${LIVENESS_TICKS} ticks after healing; up nodes: ${up.join(' ')}`;
    return `[liveness] leader n${l.id} (voters ${l.confState.voters.join(',')}) did not get a fresh write applied on every voter within ${LIVENESS_TICKS} ticks; nodes: ${up.join(' ')}`;
  }

  private confChangeApplied(index: number, term: number, cc: ConfChange): void {
    const q = this.quietChange;
    if (q !== null && index >= q.index) {
      this.quietChange = null;
      this.network.quiet = false;
      this.log(`quiet period ends: (${index}, t${term}) applied`);
    }
    if (index <= this.lastConfChangeIndex) return; // another node applied it first
    this.lastConfChangeIndex = index;
    this.stats.confChanges++;
    if (cc.type !== ConfChangeType.RemoveNode || !this.drivers.has(cc.nodeId)) return;
    if (this.leaderRemovals.has(index * TERM_FACTOR + term)) this.stats.leaderRemovals++;
    // The operator shuts a removed node down a little later, as it would in production.
    this.queue.push(this.queue.now + 1 + this.rng.intn(3 * UNITS_PER_TICK), EventKind.Shutdown, cc.nodeId);
  }

  /**
   * Some new leaders are cut off or crash before they have replicated much. That leaves
   * entries of several terms on different minorities: the history of the Raft paper's
   * Figure 8, which catches a leader that commits an earlier term's entries by counting
   * replicas. Isolation is checked at delivery, so an isolation due in a few units stops
   * part of what the leader already sent. A new leader that lacks an entry another node holds
   * is most often cut off at once: its own first entry then conflicts with that one, and the
   * two wait for figure8Moment.
   */
  private becameLeader(n: NodeDriver): void {
    if (this.trace !== null) this.log(`n${n.id} became leader`);
    if (this.queue.now >= this.chaosEnd) return;
    if (this.quietChange === null && this.lacksOthersEntry(n) && this.rng.chance(FIGURE8_DIVERGE_CHANCE)) {
      // Its first entry stays on it alone, at an index where another node holds an entry of
      // another term: Figure 8 (a) and (b). Isolation is checked at delivery: nothing it sends gets out.
      if (this.trace !== null) this.log(`n${n.id} lacks an uncommitted entry another node holds: isolate it`);
      this.stats.figure8Isolations++;
      this.isolate(n.id);
      return;
    }
    const r = this.rng.next();
    if (r < LEADER_ISOLATE_CHANCE) {
      this.queue.push(this.queue.now + this.rng.intn(3 * UNITS_PER_TICK), EventKind.Isolate, n.id);
    } else if (r < LEADER_ISOLATE_CHANCE + LEADER_CRASH_CHANCE) {
      this.queue.push(this.queue.now + 1 + this.rng.intn(2 * UNITS_PER_TICK), EventKind.Crash, n.id, null, 0, n.incarnation);
    }
  }

  /**
   * Leader `n` has just learnt from acknowledgement `m` that an entry of an earlier term is on
   * a quorum, while no entry of its own term is: the moment of the Raft paper's Figure 8 (c).
   * A leader that commits by counting replicas commits that entry now; cut off before its own
   * term's entry spreads, it leaves the entry to a successor that may hold a later-term entry
   * at the same index (one left by an earlier leader that failed early) and overwrite it.
   */
  private figure8Moment(n: NodeDriver, m: Message): boolean {
    if (this.healed || this.quietChange !== null || n.raw === null) return false;
    const acked = termAt(n, m.index);
    if (acked === 0 || acked >= m.term) return false; // cheap filter: the acknowledged entry is of an earlier term
    const st = n.raw.status();
    if (st.softState.role !== StateRole.Leader || st.hardState.term !== m.term || st.progress === null) return false;
    const matches = st.config.voters.map((v) => st.progress!.get(v)?.match ?? 0).sort((a, b) => b - a);
    const quorumIndex = matches[Math.floor(matches.length / 2)];
    const t = termAt(n, quorumIndex);
    return t !== 0 && t < m.term;
  }

  /** Some other member holds an entry beyond anything committed that `n`'s log does not have. */
  private lacksOthersEntry(n: NodeDriver): boolean {
    const from = this.checker.maxCommit + 1;
    for (const d of this.drivers.values()) {
      if (d === n || d.decommissioned) continue;
      for (let i = Math.max(from, d.storage.firstIndex()); i <= d.storage.lastIndex(); i++) {
        if (termAt(n, i) !== d.storage.term(i)) return true;
      }
    }
    return false;
  }

  private shutdown(id: NodeId): void {
    const n = this.drivers.get(id)!;
    this.log(`shutdown n${id} (removed from the cluster)`);
    if (n.raw !== null) n.crash();
    n.decommissioned = true;
  }

  // ---- ClusterOps: the workload's operations, each one step ------------------------------

  members(): NodeDriver[] {
    const out: NodeDriver[] = [];
    for (const n of this.drivers.values()) if (!n.decommissioned) out.push(n);
    return out;
  }

  leader(): NodeDriver | null {
    let best: NodeDriver | null = null;
    for (const n of this.drivers.values()) {
      if (n.raw !== null && n.role === StateRole.Leader && (best === null || n.hard.term > best.hard.term)) best = n;
    }
    return best;
  }

  propose(n: NodeDriver): void {
    const id = this.nextWriteId++;
    this.stats.writes++;
    this.step(`write ${id} at n${n.id}`, n, () => n.raw!.propose(encodeWrite(id, this.rng.intn(KEYS))));
  }

  read(n: NodeDriver): void {
    const id = this.nextReadId++;
    this.step(`read ${id} at n${n.id}`, n, () => n.issueRead(id, this.rng.intn(KEYS)));
  }

  crash(n: NodeDriver): void {
    this.stats.crashes++;
    this.paused.delete(n.id);
    this.step(`crash n${n.id}`, null, () => n.crash());
    // Its followers' transports see the connections reset soon after, and most of them tell
    // the core, which then may elect a successor without waiting out the lease.
    for (const f of this.drivers.values()) {
      if (f.up && f.lead === n.id && this.rng.chance(0.8)) {
        this.queue.push(this.queue.now + 1 + this.rng.intn(5), EventKind.LeaderLost, f.id, null, n.id);
      }
    }
  }

  tornCrash(n: NodeDriver): void {
    this.step(`n${n.id} will crash in the middle of its next write`, null, () => (n.tornWritePending = true));
  }

  pause(n: NodeDriver, ticks: number): void {
    this.step(`pause n${n.id} for ${ticks} ticks`, null, () => this.paused.set(n.id, this.queue.now + ticks * UNITS_PER_TICK));
  }

  private pausedUntil(id: NodeId): number {
    return this.paused.size === 0 ? 0 : (this.paused.get(id) ?? 0);
  }

  private leaderLost(id: NodeId, leader: NodeId): void {
    const f = this.drivers.get(id)!;
    if (f.raw === null || f.lead !== leader || this.pausedUntil(id) > this.queue.now) return;
    this.step(`n${id} lost its connection to leader n${leader}`, f, () => f.raw!.forgetLeader());
  }

  setTimeouts(n: NodeDriver, electionTick: number, heartbeatTick: number): void {
    this.step(`n${n.id} reloads timeouts: election ${electionTick}, heartbeat ${heartbeatTick}`, n, () =>
      n.raw!.setTimeouts(electionTick, heartbeatTick),
    );
  }

  restart(n: NodeDriver): void {
    this.step(`restart n${n.id}`, null, () => n.start());
  }

  setFaults(f: FaultRates): void {
    this.step(`network loss=${f.loss} duplicate=${f.duplicate} delay=${f.delay}`, null, () => (this.network.faults = f));
  }

  partition(a: NodeId[], b: NodeId[]): void {
    this.step(`partition [${a.join(',')}] | [${b.join(',')}]`, null, () => this.network.partition(a, b));
  }

  isolate(id: NodeId): void {
    const rest = this.members().filter((n) => n.id !== id).map((n) => n.id);
    this.partition([id], rest);
  }

  cut(from: NodeId[], to: NodeId[]): void {
    this.step(`cut [${from.join(',')}] -> [${to.join(',')}]`, null, () => this.network.cut(from, to));
  }

  healPartitions(): void {
    if (!this.network.partitioned) return;
    this.step('heal partitions', null, () => this.network.healPartitions());
  }

  reconnect(n: NodeDriver): void {
    if (!this.network.partitioned) return;
    this.step(`reconnect n${n.id}`, null, () => this.network.reconnect(n.id));
  }

  quiet(): boolean {
    return this.quietChange !== null;
  }

  changeMembership(at: NodeDriver, type: ConfChangeType, target: NodeId | 'fresh'): void {
    const nodeId = target === 'fresh' ? this.nextNodeId : target;
    const pair = type === ConfChangeType.RemoveNode && nodeId === at.id && at.up ? at.latestConfState().voters : [];
    const needsQuiet = pair.length === 2;
    if (needsQuiet && !this.healthyPair(at.id, pair)) {
      if (this.trace !== null) this.log(`n${at.id} would remove itself from voters ${pair.join(',')}, but the pair is not healthy and caught up`);
      return;
    }
    this.step(`propose ${ConfChangeType[type]} n${nodeId} at n${at.id}`, at, () => {
      const appended = at.raw!.proposeConfChange({ type, nodeId, context: new Uint8Array(0) });
      if (appended !== null && nodeId === at.id) this.leaderRemovals.add(appended.index * TERM_FACTOR + appended.term);
      if (appended !== null && needsQuiet) {
        this.quietChange = { ...appended, until: this.queue.now + QUIET_LIMIT_TICKS * UNITS_PER_TICK };
        this.network.quiet = true;
        this.log(`quiet period starts: (${appended.index}, t${appended.term}) must commit`);
      }
      if (target === 'fresh') {
        // The new member starts empty; it learns the log (or a snapshot) from the leader.
        this.nextNodeId++;
        this.startDriver(this.addDriver(nodeId));
      }
    });
  }

  /** Both voters run, unpaused, without a torn write pending, follow `leader`, reach each other, and are caught up. */
  private healthyPair(leader: NodeId, [a, b]: NodeId[]): boolean {
    for (const id of [a, b]) {
      const n = this.drivers.get(id);
      if (n === undefined || n.raw === null || n.tornWritePending || this.pausedUntil(id) > this.queue.now) return false;
      // The core's view: with a write in flight, the driver's may lag (an election may be under way).
      if (n.raw.status().softState.lead !== leader) return false;
    }
    if (this.network.isBlocked(a, b) || this.network.isBlocked(b, a)) return false;
    // The other voter has caught up and answered lately (the leader keeps its quorum).
    const st = this.drivers.get(leader)!.raw!.status();
    const pr = st.progress?.get(a === leader ? b : a);
    return pr !== undefined && pr.recentActive && pr.state === ProgressState.Replicate && pr.match === st.lastIndex;
  }

  transferLeadership(at: NodeDriver, target: NodeId): void {
    this.step(`transfer leadership to n${target} at n${at.id}`, at, () => at.raw!.transferLeadership(target));
  }

  campaign(n: NodeDriver): void {
    this.step(`campaign at n${n.id}`, n, () => n.raw!.campaign());
  }

  snapshot(n: NodeDriver, tail: number): void {
    this.step(`snapshot n${n.id} at ${n.sm.applied}, keep ${tail}`, null, () => n.snapshotAndCompact(tail));
  }

  /**
   * One workload step: runs `act`, then lets `n` (if given, and still up) process its Readies. A request the
   * core declines (no leader, transfer under way, change pending) is a normal outcome.
   */
  private step(what: string, n: NodeDriver | null, act: () => unknown): void {
    // Requests to a node that crashed earlier in this tick, or is paused, go unanswered.
    if (n !== null && (n.raw === null || this.pausedUntil(n.id) > this.queue.now)) return;
    this.steps++;
    if (this.trace !== null) this.log(what);
    if (n?.writeInFlight) this.stats.steppedWhileWriting++;
    try {
      act();
    } catch (err) {
      if (!(err instanceof ProposalDroppedError)) throw err;
      if (this.trace !== null) this.log(`  declined: ${err.message}`);
    }
    if (n !== null) n.handleReadies();
  }

  private tickLabel(): string {
    return (this.queue.now / UNITS_PER_TICK).toFixed(1);
  }

  private log(line: string): void {
    if (this.trace !== null) this.trace(`[${this.tickLabel()}] ${line}`);
  }
}

/** Term of the entry at `index` in `n`'s durable log, or 0 when it is not there. */
function termAt(n: NodeDriver, index: number): number {
  const log = n.storage;
  if (index < log.firstIndex() || index > log.lastIndex()) return 0;
  return log.term(index);
}
