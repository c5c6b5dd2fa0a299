import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every Prometheus metric the agent exports, in one registry per agent. Names follow the
 * Prometheus conventions: base units (seconds, bytes), `_total` for counters. The first six
 * are the names the operator documents promise.
 */
export class AgentMetrics {
  readonly registry = new Registry();

  readonly term = new Gauge({ name: 'pgraft_term', help: 'Current Raft term of this node.', registers: [this.registry] });
  readonly leaderId = new Gauge({ name: 'pgraft_leader_id', help: 'Node id of the leader this node knows (0: none).', registers: [this.registry] });
  readonly isLeader = new Gauge({ name: 'pgraft_is_leader', help: '1 if this node is the leader, else 0.', registers: [this.registry] });
  readonly logSize = new Gauge({ name: 'pgraft_log_size', help: 'Entries in the log since the last compaction.', registers: [this.registry] });
  readonly commitIndex = new Gauge({ name: 'pgraft_commit_index', help: 'Highest log index known committed.', registers: [this.registry] });
  readonly appliedIndex = new Gauge({ name: 'pgraft_applied_index', help: 'Highest log index applied to the state machine.', registers: [this.registry] });
  readonly lastIndex = new Gauge({ name: 'pgraft_last_index', help: 'Index of the last entry in the log.', registers: [this.registry] });
  readonly members = new Gauge({
    name: 'pgraft_members',
    help: 'Cluster members by role.',
    labelNames: ['role'] as const,
    registers: [this.registry],
  });

  readonly elections = new Counter({
    name: 'pgraft_elections_total',
    help: 'Elections this node started (pre-vote rounds that became real campaigns count once).',
    registers: [this.registry],
  });
  readonly leaderChanges = new Counter({ name: 'pgraft_leader_changes_total', help: 'Times the leader seen by this node changed.', registers: [this.registry] });
  readonly proposals = new Counter({
    name: 'pgraft_proposals_total',
    help: 'Proposals made on this node, by outcome.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly messagesReceived = new Counter({ name: 'pgraft_messages_received_total', help: 'Raft messages received from peers.', registers: [this.registry] });
  readonly messagesSent = new Counter({ name: 'pgraft_messages_sent_total', help: 'Raft messages handed to the transport.', registers: [this.registry] });
  readonly heartbeatsSent = new Counter({ name: 'pgraft_heartbeats_sent_total', help: 'Heartbeats sent as leader.', registers: [this.registry] });
  readonly peerRefusals = new Counter({
    name: 'pgraft_peer_connections_refused_total',
    help: 'Peer connections this node refused at the handshake, by reason: wrong_cluster, wrong_version, wrong_node, removed.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly storageErrors = new Counter({ name: 'pgraft_storage_errors_total', help: 'Failed log writes or fsyncs.', registers: [this.registry] });
  readonly snapshots = new Counter({ name: 'pgraft_snapshots_total', help: 'Snapshots taken on this node.', registers: [this.registry] });
  readonly snapshotsInstalled = new Counter({ name: 'pgraft_snapshots_installed_total', help: 'Snapshots received from a leader and installed.', registers: [this.registry] });
  readonly snapshotDuration = new Histogram({
    name: 'pgraft_snapshot_duration_seconds',
    help: 'Time to take and persist a snapshot.',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30],
    registers: [this.registry],
  });
  readonly proposalLatency = new Histogram({
    name: 'pgraft_proposal_commit_seconds',
    help: 'Time from a proposal on the leader to its application.',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly fsyncDuration = new Histogram({
    name: 'pgraft_fsync_duration_seconds',
    help: 'Time to write and fsync one batch of log entries and hard state.',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly batchEntries = new Histogram({
    name: 'pgraft_batch_entries',
    help: 'Entries written per log append (group commit).',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    registers: [this.registry],
  });
  readonly peerLag = new Gauge({
    name: 'pgraft_peer_replication_lag_entries',
    help: 'On the leader: entries each member is behind the leader\'s last index.',
    labelNames: ['peer'] as const,
    registers: [this.registry],
  });

  readonly peerLastContact = new Gauge({
    name: 'pgraft_peer_last_contact_seconds',
    help: 'Seconds since this node last received a message from each member.',
    labelNames: ['peer'] as const,
    registers: [this.registry],
  });
  readonly running = new Gauge({
    name: 'pgraft_agent_running',
    help: '1 while the agent runs normally; 0 once it has stopped, or stopped after an error.',
    registers: [this.registry],
  });

  constructor(opts: { processMetrics?: boolean } = {}) {
    // Every outcome is exported from the start (at 0), so that rate() and alerts see a
    // series before the first proposal of that kind.
    for (const result of ['committed', 'refused', 'timeout', 'failed']) this.proposals.inc({ result }, 0);
    if (opts.processMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry, prefix: 'pgraft_' });
      // prom-client also sums its per-type gauges (nodejs_active_handles, ...) into gauges
      // named *_total, a suffix Prometheus reserves for counters (promtool check metrics
      // refuses them); the per-type gauges stay.
      for (const n of ['active_handles', 'active_requests', 'active_resources']) this.registry.removeSingleMetric(`pgraft_nodejs_${n}_total`);
    }
  }
}
