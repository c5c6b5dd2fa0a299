import type { Logger } from 'pino';
import type { PgraftConfig } from '../config';
import type { AgentMetrics } from '../http/metrics';
import type { AgentOptions } from '../node';
import { CommandError } from './client';
import { ExitCode } from './exit_codes';

/** host:port with brackets around an IPv6 address. */
export function endpoint(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export interface StartMode {
  /** --bootstrap: start a new cluster if the data directory is empty. */
  bootstrap: boolean;
  /** --join HOST:PORT was given: never bootstrap; the node is added through that member. */
  joining: boolean;
}

/**
 * The agent's options from the configuration. A new cluster is bootstrapped from
 * pgraft.initial_cluster when it names this node (unless --join), or with --bootstrap (the
 * initial_cluster members, or this node alone); in all cases only when the data directory
 * is empty.
 * Member API addresses are left out of the bootstrap entries so that every founding node
 * writes the very same log; each node then records its own API address through Raft (Agent).
 */
export function agentOptions(c: PgraftConfig, mode: StartMode, logger: Logger, metrics: AgentMetrics): AgentOptions {
  const self = c.initial_cluster.find((m) => m.id === c.node_id);
  if (mode.bootstrap && mode.joining) {
    throw new CommandError('--bootstrap and --join contradict each other', ExitCode.USAGE, 'start the first node with --bootstrap and the others with --join');
  }
  // A founding member that comes back with an empty data directory (after force-new-cluster
  // removed it, say) joins the running cluster: --join says so, whatever the list of founders.
  if (mode.joining && self) {
    logger.info({ initialCluster: c.initial_cluster.map((m) => m.id) }, `pgraft.initial_cluster names this node (${c.node_id}), but --join was given: it joins the running cluster instead of founding one`);
  }
  if (mode.bootstrap && c.initial_cluster.length > 0 && !self) {
    throw new CommandError(
      `--bootstrap was given, but pgraft.initial_cluster does not name this node (${c.node_id})`,
      ExitCode.USAGE,
      `add ${c.node_id}=${endpoint(c.address, c.port)} to pgraft.initial_cluster, or start this node with --join`,
    );
  }
  let bootstrap: AgentOptions['bootstrap'];
  if (self && !mode.joining) bootstrap = c.initial_cluster.map((m) => ({ id: m.id, raftAddress: endpoint(m.host, m.port) }));
  else if (mode.bootstrap) bootstrap = [{ id: c.node_id, raftAddress: endpoint(c.address, c.port) }];

  const tls =
    c.tls_cert_file !== null && c.tls_key_file !== null && c.tls_ca_file !== null
      ? { certFile: c.tls_cert_file, keyFile: c.tls_key_file, caFile: c.tls_ca_file }
      : undefined;
  return {
    nodeId: c.node_id,
    clusterId: c.cluster_id,
    raftHost: c.address,
    listenHost: c.listen_address ?? undefined,
    raftPort: c.port,
    apiAddress: endpoint(c.address, c.api_port),
    dataDir: c.data_dir,
    electionTimeoutMs: c.election_timeout,
    heartbeatIntervalMs: c.heartbeat_interval,
    preVote: c.pre_vote,
    checkQuorum: c.check_quorum,
    snapshotInterval: c.snapshot_interval,
    maxLogEntries: c.max_log_entries,
    compactionThreshold: c.compaction_threshold,
    batchSize: c.batch_size,
    maxMessageBytes: c.max_message_size,
    maxInflightMessages: c.max_inflight_messages,
    logSegmentBytes: c.log_segment_size,
    tls,
    bootstrap,
    requestTimeoutMs: agentDeadline(c.rpc_timeout),
    logger,
    metrics,
  };
}

/**
 * The agent gives up on a request a little before the SQL caller's pgraft.rpc_timeout, so
 * its own reason (no leader, no quorum: the write was not made) reaches the operator instead
 * of the caller's generic "did not finish in time, may still take effect".
 */
export function agentDeadline(rpcTimeoutMs: number): number {
  return Math.max(Math.round(rpcTimeoutMs * 0.9), rpcTimeoutMs - 250, 1);
}
