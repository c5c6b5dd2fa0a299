/**
 * The contract between the SQL control surface (sql/, migrations/) and the agent.
 *
 * - ControlPlane: what the agent does when an operator calls a pgraft_* control function.
 *   The PostgresBridge turns each request row into one call and the outcome into the reply
 *   the SQL function returns or raises. Every method resolves when the operation is done
 *   in the Raft sense (committed, applied, read linearizably), not when it was proposed.
 * - StatusSnapshot: what the agent publishes in the state file that the read-only status
 *   functions read (they must work on a hot standby, so they never call the agent).
 */

/** SQLSTATEs the agent raises through SQL (PostgreSQL Appendix A). */
export const SqlState = {
  /** An argument is out of range or malformed. */
  InvalidParameter: '22023',
  /** This node is not the leader (the hint names the leader), or no leader is known. */
  NotLeader: '55000',
  /** Another membership change is still in progress. */
  ChangeInProgress: '55006',
  /** The named node, key or entry does not exist where it must. */
  UndefinedObject: '42704',
  /** The agent could not complete the operation in time (e.g. no quorum). */
  AgentTimeout: '58000',
  /** Anything else: a bug or an unexpected failure in the agent. */
  Internal: 'XX000',
} as const;

/**
 * A failure the operator should see as a PostgreSQL ERROR with this message, hint, detail
 * and SQLSTATE. Errors of any other type reach SQL as SqlState.Internal.
 */
export class ControlError extends Error {
  constructor(
    message: string,
    readonly sqlstate: string = SqlState.Internal,
    readonly hint?: string,
    readonly detail?: string,
  ) {
    super(message);
    this.name = 'ControlError';
  }
}

/** One entry of the replicated log as pgraft_log_get_entry() shows it. */
export interface LogEntryInfo {
  index: number;
  term: number;
  /** 'normal' for application data, 'conf_change' for membership changes. */
  type: string;
  /** Normal entries: the text appended; others: a readable description. */
  data: string | null;
}

export interface KvStats {
  numKeys: number;
  /** Keys and values, in bytes. */
  totalBytes: number;
  puts: number;
  gets: number;
  deletes: number;
  /** Log index up to which the store has applied commands. */
  appliedIndex: number;
}

/** The leader's replication progress towards one follower. */
export interface FollowerProgress {
  nodeId: number;
  address: string;
  port: number;
  role: NodeRole;
  matchIndex: number;
  nextIndex: number;
  /** Leader's last index minus matchIndex. */
  lag: number;
  /** Replication state as in etcd's tracker: probe, replicate or snapshot. */
  state: string;
  /** Append messages sent and not yet acknowledged. */
  inflight: number;
  /** Epoch milliseconds of the last message from the follower; null if never heard. */
  lastContactMs: number | null;
}

export interface ControlPlane {
  /** Bootstrap a new cluster with this node as its single voter. */
  init(): Promise<boolean>;
  /**
   * Add a node and resolve true once it is a voter. Refuse (ControlError) on a follower,
   * with SqlState.NotLeader and a hint naming the leader's address; while another
   * membership change is in progress (SqlState.ChangeInProgress); when no leader is known.
   */
  addNode(nodeId: number, address: string, port: number): Promise<boolean>;
  removeNode(nodeId: number): Promise<boolean>;
  /** Resolve true once `target` (null: the best voter the leader picks) leads. */
  transferLeadership(target: number | null): Promise<boolean>;
  /** Append to the replicated log; resolve the entry's index once committed. */
  logAppend(data: string): Promise<number>;
  logGetEntry(index: number): Promise<LogEntryInfo | null>;
  /** Resolve true once the put is committed and applied. */
  kvPut(key: string, value: string): Promise<boolean>;
  /** Linearizable read (ReadIndex, Raft thesis §6.4); null when the key is absent. */
  kvGet(key: string): Promise<string | null>;
  /** Resolve whether the key existed, once the delete is committed and applied. */
  kvDelete(key: string): Promise<boolean>;
  kvListKeys(): Promise<string[]>;
  kvGetStats(): Promise<KvStats>;
  /** One row per follower (leader only; a follower refuses with SqlState.NotLeader). */
  replicationStatus(): Promise<FollowerProgress[]>;
}

export type WorkerState = 'INITIALIZING' | 'RUNNING' | 'STOPPING' | 'STOPPED' | 'ERROR';

/** This node's Raft role, as pgraft_get_cluster_status().state shows it. */
export type RaftRole = 'leader' | 'follower' | 'candidate' | 'pre-candidate' | 'learner';

export type NodeRole = 'voter' | 'learner';

export interface NodeStatus {
  id: number;
  address: string;
  port: number;
  role: NodeRole;
  /** Highest log index known to be replicated to the node (leader's view); null if unknown. */
  matchIndex: number | null;
  lag: number | null;
  /** Epoch milliseconds of the last message from the node; null for self or never. */
  lastContactMs: number | null;
}

export interface LogStats {
  /** Entries held in the log (after compaction). */
  logSize: number;
  lastIndex: number;
  commitIndex: number;
  lastApplied: number;
  /** Counters since the agent started. */
  replicated: number;
  committed: number;
  applied: number;
  errors: number;
}

export interface Counters {
  messagesProcessed: number;
  heartbeatsSent: number;
  electionsTriggered: number;
}

export interface StatusSnapshot {
  nodeId: number;
  term: number;
  /** 0 when no leader is known. */
  leaderId: number;
  role: RaftRole;
  workerState: WorkerState;
  nodes: NodeStatus[];
  log: LogStats;
  counters: Counters;
}

/**
 * The state file as written: the snapshot plus what the bridge adds. SQL reads it with
 * pg_read_file('pgraft/status.json') and treats it as STOPPED once updatedAtMs is older
 * than pgraft.status_timeout.
 */
export interface StatusFile extends StatusSnapshot {
  /** Epoch milliseconds of this write. */
  updatedAtMs: number;
  /** The database whose pgraft.request the agent serves (requests elsewhere would wait in vain). */
  database: string;
  pid: number;
}

/** The refusal of an operation that only the leader performs; the hint says where to go. */
export function notLeaderError(leader: { id: number; address: string; port: number } | null): ControlError {
  if (!leader) {
    return new ControlError(
      'no Raft leader is known, so the cluster cannot change now',
      SqlState.NotLeader,
      'Wait for an election to finish (SELECT pgraft_get_leader() > 0), then retry; if none finishes, check that a majority of the nodes is up and reachable.',
    );
  }
  return new ControlError(
    `this node is not the Raft leader; node ${leader.id} is`,
    SqlState.NotLeader,
    `Run it on the leader: the PostgreSQL beside node ${leader.id}, whose Raft address is ${leader.address}:${leader.port}.`,
  );
}

/** Raft changes membership one node at a time (thesis §4.1). */
export function changeInProgressError(): ControlError {
  return new ControlError(
    'another membership change is in progress',
    SqlState.ChangeInProgress,
    'Wait until pgraft_get_nodes() shows the previous change done, then retry.',
  );
}
