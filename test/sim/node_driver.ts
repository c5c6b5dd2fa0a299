import { applyConfChange, cloneConfState, decodeConfChange } from '../../agent/raft/confchange';
import { MemoryStorage } from '../../agent/raft/memory_storage';
import { bootstrapLog, RaftConfig, RaftLogger, RawNode } from '../../agent/raft/rawnode';
import {
  ConfChange,
  ConfState,
  Entry,
  EntryType,
  HardState,
  Message,
  MessageType,
  NodeId,
  Ready,
  ReadState,
  Rng,
  Snapshot,
  StateRole,
} from '../../agent/raft/types';
import { InvariantViolation, SafetyChecker } from './invariants';
import { chainNext, decodeReadContext, encodeReadContext, entryHash, KvStateMachine } from './kv';

/** What a node driver needs from the simulated world around it. */
export interface DriverEnv {
  readonly checker: SafetyChecker;
  readonly rng: Rng;
  /** Passed to every RawNode (ids, storage and rng aside). */
  readonly raftConfig: Omit<RaftConfig, 'id' | 'storage' | 'rng' | 'applied' | 'logger'>;
  /**
   * Drive nodes as the agent does (Agent.processReady in agent/node.ts): leader messages
   * before the disk write when the term is already durable, an asynchronous write, and the
   * core stepped, ticked and given proposals while the write is in flight. Otherwise each
   * Ready is handled whole, in one step, as types.ts prescribes.
   */
  readonly agentLoop: boolean;
  /** Node `n` started writing a Ready; the simulator calls n.completeWrite() when the disk is done. */
  writeStarted(n: NodeDriver): void;
  /**
   * Agent loop: leader `n` has a commit index some follower was not sent; the simulator calls
   * n.flushCommit() a little later, as the agent's commit timer does.
   */
  commitFlushDue(n: NodeDriver): void;
  /** Hands a message from node `src` to the network; `incarnation` identifies the sending process. */
  send(m: Message, src: NodeId, incarnation: number): void;
  /** Some node applied the membership change in entry (index, term). */
  confChangeApplied(index: number, term: number, cc: ConfChange): void;
  /** This node just became leader (its Ready is still being handled). */
  becameLeader(n: NodeDriver): void;
  /** Node `id` applied the write with this id. */
  writeApplied(id: NodeId, writeId: number): void;
  /** Debug output, or null when tracing is off (the hot path checks for null first). */
  readonly trace: ((line: string) => void) | null;
}

/** A Ready whose disk write is under way (agent loop only). */
interface WriteInFlight {
  readonly raw: RawNode;
  readonly rd: Ready;
  /** Messages that leave once the write is durable. */
  readonly late: Message[];
  /** The Ready changes term or vote: role changes are observed only once that is durable. */
  readonly termChange: boolean;
}

/**
 * One simulated pgraft node: a RawNode over a MemoryStorage "disk" and a key-value state
 * machine, driven either exactly as the Ready contract in types.ts prescribes or as the
 * agent's loop drives it (DriverEnv.agentLoop). A crash drops the RawNode and the state
 * machine; a restart rebuilds both from the storage alone.
 */
export class NodeDriver {
  readonly storage = new MemoryStorage();
  raw: RawNode | null = null;
  /** Bumped on every crash so that late transport feedback reaches only the process it concerns. */
  incarnation = 0;
  /** Permanently shut down (removed from the cluster); never restarts. */
  decommissioned = false;
  /** Set by a fault: the next Ready that writes anything is written only in part, then the node crashes. */
  tornWritePending = false;
  /** Agent loop: messages this node sent before the write of their Ready, over all its incarnations. */
  sentBeforeWrite = 0;
  /** Agent loop: a commit flush is scheduled (see DriverEnv.commitFlushDue). */
  private commitFlushScheduled = false;

  role: StateRole = StateRole.Follower;
  lead: NodeId = 0;
  /** Hard state as last persisted. */
  hard: HardState = { term: 0, vote: 0, commit: 0 };

  readonly sm = new KvStateMachine();
  /** Membership at sm.applied, maintained from applied ConfChange entries and snapshots. */
  confState: ConfState = { voters: [], learners: [] };
  /** Read states waiting for the state machine to reach their index. */
  private pendingReads: ReadState[] = [];
  /** Lets the checker read the state machine without allocating per read. */
  private readonly readable = { applied: 0, get: (key: number) => this.sm.values[key] };
  /** Agent loop: the Ready being written; the next one waits for it. */
  private writing: WriteInFlight | null = null;

  constructor(
    readonly id: NodeId,
    private readonly env: DriverEnv,
  ) {
    env.checker.nodeCreated(id, this.storage);
  }

  get up(): boolean {
    return this.raw !== null;
  }

  /**
   * Membership as the core sees it: the newest configuration in its log, applied or not.
   * confState trails it until the change is applied, longer so while a write is in flight.
   */
  latestConfState(): ConfState {
    return this.raw!.status().config;
  }

  /** A disk write is under way: the core may have moved past what is durable. */
  get writeInFlight(): boolean {
    return this.writing !== null;
  }

  /** Writes the initial log of a brand-new cluster, as every founding member does. */
  bootstrap(voters: NodeId[]): void {
    const { entries, hardState } = bootstrapLog(voters);
    this.persistEntries(entries);
    this.persistHardState(hardState);
  }

  /** Starts (or restarts) the node from what its storage holds. */
  start(): void {
    const snap = this.storage.snapshot();
    this.sm.restore(snap.data);
    if (this.sm.applied !== snap.metadata.index) {
      throw new Error(`n${this.id}: snapshot image is at ${this.sm.applied} but its metadata says ${snap.metadata.index}`);
    }
    this.env.checker.snapshotRestored(this.id, snap.metadata.index, this.sm.chain);
    this.confState = cloneConfState(snap.metadata.confState);
    this.role = StateRole.Follower;
    this.lead = 0;
    this.pendingReads = [];
    this.env.checker.nodeStarted(this.id);
    this.raw = new RawNode({
      id: this.id,
      storage: this.storage,
      rng: this.env.rng,
      ...this.env.raftConfig,
      applied: snap.metadata.index,
      logger: this.env.trace === null ? undefined : traceLogger(this.id, this.env.trace),
    });
    this.handleReadies();
  }

  /**
   * Loses everything volatile: the RawNode, the state machine, pending reads. A write in
   * flight reaches the disk only in part (see persistReady).
   */
  crash(): void {
    const w = this.writing;
    if (w !== null) {
      this.writing = null;
      this.persistReady(w.rd, this.keepOnCrash(w.rd));
    }
    this.raw = null;
    this.commitFlushScheduled = false;
    this.tornWritePending = false;
    this.incarnation++;
    this.role = StateRole.Follower;
    this.lead = 0;
    this.pendingReads = [];
    this.env.checker.nodeStopped(this.id);
  }

  /**
   * Processes Ready batches until the node has nothing more to do, crashed doing so, or (agent
   * loop) waits for a disk write.
   */
  handleReadies(): void {
    const raw = this.raw;
    if (raw === null || this.writing !== null) return;
    // A correct core settles after a few rounds; a loop that never ends is a bug worth naming.
    for (let rounds = 0; this.raw === raw && this.writing === null && raw.hasReady(); rounds++) {
      if (rounds === 1000) throw new InvariantViolation('ready-contract', `n${this.id} still has a Ready after 1000 rounds`);
      if (this.env.agentLoop) this.startReady(raw, raw.ready());
      else this.handleReady(raw, raw.ready());
    }
    // The synchronous driver never flushes: its followers learn commits from later appends
    // and heartbeats alone, the lazy path at its slowest.
    if (this.env.agentLoop && this.raw === raw && !this.commitFlushScheduled && raw.commitBroadcastPending()) {
      this.commitFlushScheduled = true;
      this.env.commitFlushDue(this);
    }
  }

  /** The agent's commit timer fired: tell followers the commit index they lack. */
  flushCommit(): void {
    this.commitFlushScheduled = false;
    if (this.raw === null) return;
    this.raw.broadcastCommit();
    this.handleReadies();
  }

  /** The Ready contract, steps 1 to 5 (see Ready in types.ts). */
  private handleReady(raw: RawNode, rd: Ready): void {
    const trace = this.env.trace;
    if (trace !== null) trace(describeReady(this.id, rd));
    if (this.tornWritePending && writesSomething(rd)) {
      this.tornWrite(rd);
      return;
    }
    // 1. Persist.
    this.persistReady(rd, Infinity);
    if (rd.softState !== null || rd.hardState !== null) this.observeRole(rd);
    // 2. Only now may messages leave.
    for (const m of rd.messages) this.sendMessage(m);
    // 3 to 5.
    this.applyAndAdvance(raw, rd);
  }

  /**
   * The agent loop's first half (Agent.processReady): leader appends, heartbeats and snapshots
   * leave before the disk write, unless this Ready changes term or vote; then the write starts
   * and the core stays available until it completes (completeWrite).
   */
  private startReady(raw: RawNode, rd: Ready): void {
    const trace = this.env.trace;
    if (trace !== null) trace(describeReady(this.id, rd));
    const hs = rd.hardState;
    const termChange = hs !== null && (hs.term !== this.hard.term || hs.vote !== this.hard.vote);
    if (!termChange && rd.softState !== null) this.observeRole(rd);
    const late: Message[] = [];
    for (const m of rd.messages) {
      if (!termChange && mayLeaveBeforeWrite(m.type)) {
        this.sendMessage(m);
        this.sentBeforeWrite++;
      } else late.push(m);
    }
    if (!writesSomething(rd)) {
      this.finishReady({ raw, rd, late, termChange });
      return;
    }
    this.writing = { raw, rd, late, termChange };
    if (trace !== null) trace(`  n${this.id} writes; ${rd.messages.length - late.length} messages sent before the write`);
    this.env.writeStarted(this);
  }

  /** The disk write of the Ready in flight is done: the agent loop's second half, then the next Ready. */
  completeWrite(): void {
    const w = this.writing;
    if (w === null || w.raw !== this.raw) throw new Error(`n${this.id}: no write in flight`);
    this.writing = null;
    if (this.tornWritePending) {
      this.tornWrite(w.rd);
      return;
    }
    this.persistReady(w.rd, Infinity);
    this.finishReady(w);
    this.handleReadies();
  }

  private finishReady(w: WriteInFlight): void {
    if (w.termChange || (w.rd.softState === null && w.rd.hardState !== null)) this.observeRole(w.rd);
    for (const m of w.late) this.sendMessage(m);
    this.applyAndAdvance(w.raw, w.rd);
  }

  /** Role, leader or term may have changed: tell the checker (with the durable term) and the simulator. */
  private observeRole(rd: Ready): void {
    const wasLeader = this.role === StateRole.Leader;
    if (rd.softState !== null) {
      this.role = rd.softState.role;
      this.lead = rd.softState.lead;
    }
    this.env.checker.roleObserved(this.id, this.role, this.lead, this.hard.term);
    if (!wasLeader && this.role === StateRole.Leader) this.env.becameLeader(this);
  }

  private sendMessage(m: Message): void {
    this.env.checker.messageSent(this.id, m);
    this.env.send(m, this.id, this.incarnation);
  }

  /** Ready contract steps 3 to 5: apply the snapshot and committed entries, serve reads, advance. */
  private applyAndAdvance(raw: RawNode, rd: Ready): void {
    if (rd.snapshot !== null) this.restoreSnapshot(rd.snapshot);
    for (const e of rd.committedEntries) this.apply(e);
    for (const rs of rd.readStates) this.pendingReads.push(rs);
    if (this.pendingReads.length > 0) this.serveReads();
    raw.advance(rd);
  }

  /** The process dies while writing this Ready: a prefix of the writes reaches the disk (see persistReady). */
  private tornWrite(rd: Ready): void {
    this.tornWritePending = false;
    this.persistReady(rd, this.keepOnCrash(rd));
    this.crash();
  }

  /** How many of a Ready's writes a crash lets through, at random. */
  private keepOnCrash(rd: Ready): number {
    const pieces = writePieces(rd, this.hard);
    const keep = this.env.rng.intn(pieces + 1);
    if (this.env.trace !== null) this.env.trace(`  n${this.id} crashes while writing: ${keep} of ${pieces} writes reach the disk`);
    return keep;
  }

  /**
   * Writes the first `keep` pieces of a Ready in the order the agent's DiskStorage makes them
   * durable: a new term and vote first (entries of a term must never be durable while the
   * term is not), then the snapshot (which makes its index committed), then the entries one
   * by one, then the commit index. A crash may stop after any piece; nothing is sent or
   * applied then, and a restart must cope with whatever the disk holds.
   */
  private persistReady(rd: Ready, keep: number): void {
    const hs = rd.hardState;
    if (hs !== null && (hs.term !== this.hard.term || hs.vote !== this.hard.vote)) {
      if (keep-- <= 0) return;
      this.persistHardState({ term: hs.term, vote: hs.vote, commit: this.hard.commit });
    }
    if (rd.snapshot !== null) {
      if (keep-- <= 0) return;
      this.persistSnapshot(rd.snapshot);
      const commit = Math.max(this.hard.commit, rd.snapshot.metadata.index);
      if (commit !== this.hard.commit) this.persistHardState({ term: this.hard.term, vote: this.hard.vote, commit });
    }
    const k = Math.min(keep, rd.entries.length);
    if (k > 0) this.persistEntries(k === rd.entries.length ? rd.entries : rd.entries.slice(0, k));
    keep -= k;
    if (k < rd.entries.length || hs === null || keep <= 0) return;
    if (hs.commit !== this.hard.commit || hs.term !== this.hard.term || hs.vote !== this.hard.vote) this.persistHardState(hs);
  }

  private persistSnapshot(snap: Snapshot): void {
    this.env.checker.snapshotPersisted(this.id, snap.metadata);
    this.storage.applySnapshot(snap);
  }

  private persistEntries(entries: Entry[]): void {
    this.env.checker.entriesPersisting(this.id, entries);
    this.storage.append(entries);
    this.env.checker.entriesPersisted(this.id, entries);
  }

  private persistHardState(hs: HardState): void {
    this.storage.setHardState(hs);
    this.env.checker.hardStatePersisted(this.id, hs);
    this.hard = { term: hs.term, vote: hs.vote, commit: hs.commit };
  }

  private restoreSnapshot(snap: Snapshot): void {
    if (snap.metadata.index <= this.sm.applied) {
      throw new InvariantViolation(
        'ready-contract',
        `n${this.id}: Ready carries a snapshot at ${snap.metadata.index}, not beyond applied ${this.sm.applied}`,
      );
    }
    this.sm.restore(snap.data);
    this.env.checker.snapshotRestored(this.id, snap.metadata.index, this.sm.chain);
    this.confState = cloneConfState(snap.metadata.confState);
  }

  private apply(e: Entry): void {
    if (e.index !== this.sm.applied + 1) {
      throw new InvariantViolation(
        'ready-contract',
        `n${this.id}: Ready hands out committed entry ${e.index} but the state machine is at ${this.sm.applied}`,
      );
    }
    const chain = chainNext(this.sm.chain, entryHash(e));
    const w = this.sm.apply(e, chain);
    this.env.checker.entryApplied(this.id, e, chain, w);
    if (w !== null) this.env.writeApplied(this.id, w.id);
    if (e.type === EntryType.ConfChange) {
      const cc = decodeConfChange(e.data);
      this.confState = applyConfChange(this.confState, cc);
      this.env.confChangeApplied(e.index, e.term, cc);
    }
  }

  private serveReads(): void {
    this.readable.applied = this.sm.applied;
    let kept = 0;
    for (const rs of this.pendingReads) {
      if (rs.index <= this.sm.applied) this.env.checker.readServed(this.id, decodeReadContext(rs.context), rs.index, this.readable);
      else this.pendingReads[kept++] = rs;
    }
    this.pendingReads.length = kept;
  }

  /** A client asks this node for a linearizable read of `key`. */
  issueRead(readId: number, key: number): void {
    this.env.checker.readIssued(readId, this.id, key);
    this.raw!.readIndex(encodeReadContext(readId));
  }

  /**
   * Takes a snapshot at the applied index and compacts the log, keeping `tail` entries
   * before it so that slightly lagging followers still catch up from the log.
   */
  snapshotAndCompact(tail: number): void {
    const applied = this.sm.applied;
    if (applied < this.storage.firstIndex()) return;
    this.storage.createSnapshot(applied, this.confState, this.sm.image());
    const upTo = applied - tail;
    if (upTo >= this.storage.firstIndex()) this.storage.compact(upTo);
  }
}

/** Leader messages the agent sends before its own disk write (when term and vote are already durable). */
function mayLeaveBeforeWrite(t: MessageType): boolean {
  return t === MessageType.App || t === MessageType.Heartbeat || t === MessageType.Snap;
}

function writesSomething(rd: Ready): boolean {
  return rd.snapshot !== null || rd.entries.length > 0 || rd.hardState !== null;
}

/** The separately durable writes of a Ready, given the durable hard state (see persistReady). */
function writePieces(rd: Ready, durable: HardState): number {
  const hs = rd.hardState;
  const termVote = hs !== null && (hs.term !== durable.term || hs.vote !== durable.vote);
  return (termVote ? 1 : 0) + (rd.snapshot !== null ? 1 : 0) + rd.entries.length + (hs !== null ? 1 : 0);
}

function traceLogger(id: NodeId, trace: (line: string) => void): RaftLogger {
  const log = (level: string) => (msg: string, fields?: Record<string, unknown>) =>
    trace(`    n${id} ${level}: ${msg}${fields === undefined ? '' : ' ' + JSON.stringify(fields)}`);
  return { debug: log('debug'), info: log('info'), warn: log('warn') };
}

function describeReady(id: NodeId, rd: Ready): string {
  const parts = [`  n${id} ready:`];
  if (rd.softState !== null) parts.push(`soft=${rd.softState.role}/lead n${rd.softState.lead}`);
  if (rd.hardState !== null) parts.push(`hs=(t${rd.hardState.term} v${rd.hardState.vote} c${rd.hardState.commit})`);
  if (rd.snapshot !== null) parts.push(`snap=(${rd.snapshot.metadata.index}, t${rd.snapshot.metadata.term})`);
  if (rd.entries.length > 0) parts.push(`append=${describeEntries(rd.entries)}`);
  if (rd.committedEntries.length > 0) parts.push(`apply=${describeEntries(rd.committedEntries)}`);
  if (rd.readStates.length > 0) parts.push(`reads=${rd.readStates.map((r) => `${decodeReadContext(r.context)}@${r.index}`).join(',')}`);
  if (rd.messages.length > 0) parts.push(`msgs=${rd.messages.length}`);
  return parts.join(' ');
}

export function describeEntries(ents: Entry[]): string {
  const first = ents[0];
  const last = ents[ents.length - 1];
  const kinds = ents.some((e) => e.type === EntryType.ConfChange) ? ' +conf' : '';
  return `[${first.index}..${last.index}] t${first.term}${last.term !== first.term ? `..t${last.term}` : ''}${kinds}`;
}
