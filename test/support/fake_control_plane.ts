/**
 * A ControlPlane without Raft, for testing everything between SQL and the agent: it keeps
 * a key-value map, a log and a membership list in memory, refuses like a follower when
 * told it is not the leader, records every call, and can be held to look hung.
 */
import {
  changeInProgressError,
  ControlError,
  ControlPlane,
  FollowerProgress,
  KvStats,
  LogEntryInfo,
  NodeStatus,
  notLeaderError,
  SqlState,
  StatusSnapshot,
  WorkerState,
} from '../../agent/postgres/control';

export interface Call {
  op: keyof ControlPlane;
  args: unknown[];
}

export class FakeControlPlane implements ControlPlane {
  readonly calls: Call[] = [];
  nodeId = 1;
  leaderId = 1;
  term = 3;
  workerState: WorkerState = 'RUNNING';
  changeInProgress = false;
  nodes: NodeStatus[] = [
    { id: 1, address: '10.0.1.11', port: 7001, role: 'voter', matchIndex: 12, lag: 0, lastContactMs: null },
    { id: 2, address: '10.0.1.12', port: 7002, role: 'voter', matchIndex: 10, lag: 2, lastContactMs: 1700000000000 },
    { id: 3, address: '10.0.1.13', port: 7003, role: 'learner', matchIndex: 7, lag: 5, lastContactMs: 1700000000500 },
  ];
  readonly kv = new Map<string, string>();
  readonly entries: string[] = [];
  counters = { messagesProcessed: 120, heartbeatsSent: 45, electionsTriggered: 2 };
  private held: Promise<void> | null = null;
  private release: (() => void) | null = null;

  /** Make every call wait until unhold() (an agent stuck in an operation). */
  hold(): void {
    this.held = new Promise((resolve) => (this.release = resolve));
  }

  unhold(): void {
    this.release?.();
    this.held = null;
  }

  status(): StatusSnapshot {
    return {
      nodeId: this.nodeId,
      term: this.term,
      leaderId: this.leaderId,
      role: this.leaderId === this.nodeId ? 'leader' : 'follower',
      workerState: this.workerState,
      nodes: this.nodes,
      log: {
        logSize: this.entries.length,
        lastIndex: this.entries.length,
        commitIndex: this.entries.length,
        lastApplied: this.entries.length,
        replicated: 40,
        committed: this.entries.length,
        applied: this.entries.length,
        errors: 1,
      },
      counters: this.counters,
    };
  }

  async init(): Promise<boolean> {
    await this.enter('init', []);
    this.leaderId = this.nodeId;
    return true;
  }

  async addNode(nodeId: number, address: string, port: number): Promise<boolean> {
    await this.enter('addNode', [nodeId, address, port]);
    this.leaderOnly();
    if (this.changeInProgress) throw changeInProgressError();
    if (this.nodes.some((n) => n.id === nodeId)) {
      throw new ControlError(`node ${nodeId} is already a member of the cluster`, SqlState.InvalidParameter,
        'SELECT * FROM pgraft_get_nodes() lists the members; remove the node first to re-add it.');
    }
    this.nodes = [...this.nodes, { id: nodeId, address, port, role: 'voter', matchIndex: 0, lag: 0, lastContactMs: null }];
    return true;
  }

  async removeNode(nodeId: number): Promise<boolean> {
    await this.enter('removeNode', [nodeId]);
    this.leaderOnly();
    if (!this.nodes.some((n) => n.id === nodeId)) {
      throw new ControlError(`node ${nodeId} is not a member of the cluster`, SqlState.UndefinedObject,
        'SELECT * FROM pgraft_get_nodes() lists the members.');
    }
    this.nodes = this.nodes.filter((n) => n.id !== nodeId);
    return true;
  }

  async transferLeadership(target: number | null): Promise<boolean> {
    await this.enter('transferLeadership', [target]);
    this.leaderOnly();
    this.leaderId = target ?? this.nodes.find((n) => n.id !== this.nodeId && n.role === 'voter')?.id ?? this.nodeId;
    this.term++;
    return true;
  }

  async logAppend(data: string): Promise<number> {
    await this.enter('logAppend', [data]);
    this.leaderOnly();
    this.entries.push(data);
    return this.entries.length;
  }

  async logGetEntry(index: number): Promise<LogEntryInfo | null> {
    await this.enter('logGetEntry', [index]);
    const data = this.entries[index - 1];
    return data === undefined ? null : { index, term: this.term, type: 'normal', data };
  }

  async kvPut(key: string, value: string): Promise<boolean> {
    await this.enter('kvPut', [key, value]);
    this.leaderOnly();
    this.kv.set(key, value);
    return true;
  }

  async kvGet(key: string): Promise<string | null> {
    await this.enter('kvGet', [key]);
    this.leaderOnly();
    return this.kv.get(key) ?? null;
  }

  async kvDelete(key: string): Promise<boolean> {
    await this.enter('kvDelete', [key]);
    this.leaderOnly();
    return this.kv.delete(key);
  }

  async kvListKeys(): Promise<string[]> {
    await this.enter('kvListKeys', []);
    return [...this.kv.keys()].sort();
  }

  async kvGetStats(): Promise<KvStats> {
    await this.enter('kvGetStats', []);
    let totalBytes = 0;
    for (const [k, v] of this.kv) totalBytes += Buffer.byteLength(k) + Buffer.byteLength(v);
    const count = (op: Call['op']) => this.calls.filter((c) => c.op === op).length;
    return {
      numKeys: this.kv.size,
      totalBytes,
      puts: count('kvPut'),
      gets: count('kvGet'),
      deletes: count('kvDelete'),
      appliedIndex: this.entries.length,
    };
  }

  async replicationStatus(): Promise<FollowerProgress[]> {
    await this.enter('replicationStatus', []);
    this.leaderOnly();
    return this.nodes
      .filter((n) => n.id !== this.nodeId)
      .map((n) => ({
        nodeId: n.id,
        address: n.address,
        port: n.port,
        role: n.role,
        matchIndex: n.matchIndex ?? 0,
        nextIndex: (n.matchIndex ?? 0) + 1,
        lag: n.lag ?? 0,
        state: 'replicate',
        inflight: 0,
        lastContactMs: n.lastContactMs,
      }));
  }

  private async enter(op: Call['op'], args: unknown[]): Promise<void> {
    this.calls.push({ op, args });
    if (this.held) await this.held;
  }

  private leaderOnly(): void {
    if (this.leaderId === this.nodeId) return;
    const leader = this.nodes.find((n) => n.id === this.leaderId);
    throw notLeaderError(leader ? { id: leader.id, address: leader.address, port: leader.port } : null);
  }
}
