/**
 * Every pgraft.* setting, one entry each: type (and with it the unit), default, range,
 * whether a reload applies it to the running agent (live) or it waits for a restart, and
 * what it means. Adding a setting is adding an entry here; the config object's type, the
 * environment variable, validation and the reference in docs/configuration.md follow.
 *
 * Defaults and meanings follow the operator documents (best practices, operations guide);
 * the settings they do not show are what the agent's design needs (API port, bootstrap
 * membership, TLS, token, PostgreSQL bridge).
 */
import { Member, hostProblem } from './members';
import { SettingSpec, bool, int, memberList, oneOf, optionalPath, optionalText, requiredPath, size, text, time } from './spec';

/** PostgreSQL's integer settings stop here; node ids and counts do too. */
const INT_MAX = 2_147_483_647;
const MINUTE = 60_000;
const MB = 1024 * 1024;

const port = (def: number, description: string) =>
  int({ default: def, min: 1, max: 65535, live: false, group: 'identity', description });

export const SETTINGS = {
  // Identity and network
  cluster_id: text({
    default: 'pgraft-cluster',
    check: (s) => (/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(s) ? null : `"${s}" is not a valid cluster id`),
    hint: "use up to 63 letters, digits, '.', '_' or '-', starting with a letter or digit, e.g. 'production-cluster'",
    range: "up to 63 letters, digits, '.', '_', '-'",
    live: false,
    group: 'identity',
    description:
      'Name of the cluster; identical on every node. Agents refuse peers that present another cluster id, so two clusters on one network cannot mix.',
  }),
  node_id: int({
    min: 1,
    max: INT_MAX,
    live: false,
    group: 'identity',
    description: 'This node\'s id, unique in the cluster (1, 2, 3, ...). Required. The id given to pgraft_add_node() on the leader.',
  }),
  address: text({
    default: '127.0.0.1',
    check: hostProblem,
    hint: "give an IP address or host name, e.g. pgraft.address = '10.0.1.11'",
    range: 'IP address or host name',
    live: false,
    group: 'identity',
    description:
      "This node's address on the cluster network: the other nodes and API clients connect to it, and the agent announces it. The agent also listens on it, unless listen_address says otherwise. The default only accepts connections from this machine.",
  }),
  listen_address: optionalText({
    check: hostProblem,
    hint: "give an IP address or host name, or 0.0.0.0 for every interface, e.g. pgraft.listen_address = '0.0.0.0'",
    range: 'IP address or host name; 0.0.0.0 or ::',
    live: false,
    group: 'identity',
    description:
      'Where the agent listens for Raft, API and metrics connections when that differs from address, which stays the address announced: 0.0.0.0 in a container or behind NAT, where the address others reach is not one of the machine\'s own. Unset: address.',
  }),
  port: port(7001, 'TCP port for Raft traffic between agents (not the PostgreSQL port).'),
  api_port: port(7002, 'TCP port of the HTTP API: status, health checks for load balancers, key-value store.'),
  data_dir: requiredPath({
    live: false,
    group: 'identity',
    description:
      "Directory for the Raft log, hard state and snapshots; absolute. Required. Keep it outside the PostgreSQL data directory and back it up with it: the whole directory with the agent stopped (`tar -czf pgraft-backup.tar.gz $PGRAFT_DATA_DIR`), its newest snapshot file while the agent runs (docs/cli.md).",
  }),
  initial_cluster: memberList({
    maxId: INT_MAX,
    live: false,
    group: 'identity',
    description:
      "Members that bootstrap a new cluster, as node_id=host:port pairs, e.g. '1=10.0.0.1:7001,2=10.0.0.2:7001,3=10.0.0.3:7001'; the same on every founding node. Used only when data_dir is empty. Leave empty on a node that will be added later with pgraft_add_node().",
  }),

  // Consensus
  election_timeout: time({
    default: 1000,
    min: 10,
    max: 5 * MINUTE,
    live: true,
    group: 'consensus',
    description:
      'How long a follower waits without hearing from a leader before it starts an election (randomized up to a quarter more; up to twice this after an election that found no leader). LAN 1000, WAN 2000, high latency 5000. At least 10 × heartbeat_interval.',
  }),
  heartbeat_interval: time({
    default: 100,
    min: 1,
    max: MINUTE,
    live: true,
    group: 'consensus',
    description:
      'How often the leader sends heartbeats. 100 by default; 50 for faster failure detection (more traffic), 200 for less overhead. Must be below election_timeout.',
  }),
  pre_vote: bool({
    default: true,
    live: false,
    group: 'consensus',
    description:
      'A node first asks whether it could win before it starts an election (Raft thesis §9.6), so a node coming back from a partition does not depose a working leader.',
  }),
  check_quorum: bool({
    default: true,
    live: false,
    group: 'consensus',
    description:
      'A leader that has not heard from a majority within an election timeout steps down, so a partitioned leader stops accepting writes.',
  }),

  // Log and snapshots
  snapshot_interval: int({
    default: 10000,
    min: 1,
    max: INT_MAX,
    live: true,
    group: 'log',
    description:
      'Take a snapshot after this many log entries have been applied since the last one. Smaller (5000): faster recovery, more I/O; larger (100000): less I/O, slower recovery.',
  }),
  max_log_entries: int({
    default: 1000,
    min: 0,
    max: INT_MAX,
    live: true,
    group: 'log',
    description:
      'Log entries kept before the latest snapshot when the log is compacted, so a follower that is slightly behind catches up from the log instead of receiving a whole snapshot.',
  }),
  compaction_threshold: int({
    default: 10000,
    min: 1,
    max: INT_MAX,
    live: true,
    group: 'log',
    description:
      'Compact the log (delete what the latest snapshot covers, apart from max_log_entries) once at least this many entries can go; batches deletions to limit I/O.',
  }),
  log_segment_size: size({
    default: 64 * MB,
    min: MB,
    max: 1024 * MB,
    live: false,
    group: 'log',
    description:
      'Size at which the write-ahead log starts a new segment file; compaction deletes whole segments. The active segment is filled with zeros 1 MB ahead of the log, so that appends overwrite space already on disk.',
  }),

  // Batching and replication
  batch_size: int({
    default: 100,
    min: 1,
    max: 100_000,
    live: true,
    group: 'batching',
    description: 'Most proposals grouped into one log append and one message per follower. Larger (200): higher throughput.',
  }),
  max_batch_delay: time({
    default: 10,
    min: 0,
    max: 1000,
    live: true,
    group: 'batching',
    description:
      'Accepted for compatibility; pgraft never holds a proposal back to fill a batch. Proposals that arrive while a log write is in progress form the next batch (group commit), so a proposal waits at most for the write ahead of it, and an idle cluster writes at once.',
  }),
  max_message_size: size({
    default: MB,
    min: 4096,
    max: 256 * MB,
    live: false,
    group: 'batching',
    description: 'Most entry data in one replication message to a follower (one entry is always sent, however large).',
  }),
  max_inflight_messages: int({
    default: 256,
    min: 1,
    max: 65536,
    live: false,
    group: 'batching',
    description: 'Replication messages sent to a follower ahead of its acknowledgements (pipelining window).',
  }),

  // Monitoring and logging
  metrics_enabled: bool({
    default: false,
    live: false,
    group: 'monitoring',
    description: 'Serve Prometheus metrics at http://node:metrics_port/metrics.',
  }),
  metrics_port: int({
    default: 9100,
    min: 1,
    max: 65535,
    live: false,
    group: 'monitoring',
    description: 'TCP port of the metrics endpoint (when metrics_enabled).',
  }),
  log_level: oneOf({
    values: ['debug', 'info', 'warn', 'error'] as const,
    aliases: { warning: 'warn' },
    default: 'info',
    live: true,
    group: 'monitoring',
    description: "Least severe level the agent logs (JSON lines); 'info' stays quiet in steady state.",
  }),

  // Security
  tls_cert_file: optionalPath({
    live: false,
    group: 'security',
    description: "This node's certificate (PEM) for mutual TLS between agents. TLS is on when all three tls_* files are set.",
  }),
  tls_key_file: optionalPath({
    live: false,
    group: 'security',
    description: 'Private key of tls_cert_file (PEM); readable by the agent only.',
  }),
  tls_ca_file: optionalPath({
    live: false,
    group: 'security',
    description: "CA certificate(s) (PEM) that peers' certificates must be signed by.",
  }),
  api_tls: bool({
    default: false,
    live: false,
    group: 'security',
    description:
      'Serve the HTTP API over HTTPS with tls_cert_file and tls_key_file (needs all three tls_* files). Clients trust tls_ca_file: the CLI takes --api https://HOST:PORT --cacert FILE. The metrics endpoint stays plain HTTP.',
  }),
  auth_token: optionalText({
    secret: true,
    live: true,
    group: 'security',
    description:
      'Token that HTTP API clients must present (Authorization: Bearer <token>). Prefer auth_token_file, or PGRAFT_AUTH_TOKEN, to keeping it in postgresql.conf. Unset: the API asks for no token.',
  }),
  auth_token_file: optionalPath({
    live: true,
    group: 'security',
    description: 'File holding the API token (surrounding whitespace ignored); read again on every reload, so a token can be rotated without a restart.',
  }),

  // The local PostgreSQL
  pg_conninfo: text({
    default: 'host=/var/run/postgresql dbname=postgres',
    check: () => null,
    hint: "give a libpq connection string, e.g. 'host=/var/run/postgresql port=5432 dbname=postgres user=postgres', or '' for a node without PostgreSQL",
    range: 'keyword=value pairs or a postgresql:// URI',
    live: false,
    group: 'postgres',
    description:
      "libpq connection string the agent uses for its local PostgreSQL (installing the SQL functions, answering their requests). The role must be a superuser. Empty ('') for a node without PostgreSQL, such as a witness.",
  }),
  rpc_timeout: time({
    default: 5000,
    min: 100,
    max: 10 * MINUTE,
    readBySql: true,
    live: true,
    group: 'postgres',
    description:
      'How long a pgraft_* SQL function waits for the agent to answer before it fails with an error; the agent gives up on a request it cannot complete within this time. Read by the SQL functions too.',
  }),
  status_timeout: time({
    default: 1500,
    min: 100,
    max: 10 * MINUTE,
    readBySql: true,
    live: true,
    group: 'postgres',
    description:
      'Age at which the SQL status functions (pgraft_get_leader(), pgraft_get_worker_state(), ...) take the state file for stale and report the agent as STOPPED. Read by the SQL functions.',
  }),
  state_file_interval: time({
    default: 250,
    min: 10,
    max: MINUTE,
    live: true,
    group: 'postgres',
    description:
      'How often the agent rewrites the state file those status functions read, so that they work on a hot standby; well below status_timeout.',
  }),
};

export type Settings = typeof SETTINGS;
export type SettingName = keyof Settings;

/** The value type of one setting, from its registry entry. */
export type SettingValue<K extends SettingName> = Settings[K] extends SettingSpec<infer T> ? T : never;

/** The configuration the agent runs with: one field per setting, named like it (without the prefix). */
export type PgraftConfig = { readonly [K in SettingName]: SettingValue<K> };

export type { Member };

export const PREFIX = 'pgraft';

export const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[];

/** A setting's entry, for code that handles every setting alike. */
export function specOf(name: SettingName): SettingSpec<unknown> {
  return SETTINGS[name];
}

/** The value as written in postgresql.conf; secrets are not shown. */
export function formatValue(name: SettingName, value: unknown): string {
  const spec = specOf(name);
  return spec.secret && value !== null ? '(hidden)' : spec.format(value);
}

export function isSettingName(name: string): name is SettingName {
  return Object.hasOwn(SETTINGS, name);
}

/** pgraft.node_id -> PGRAFT_NODE_ID */
export function envVariable(name: SettingName): string {
  return `${PREFIX.toUpperCase()}_${name.toUpperCase()}`;
}

export function qualified(name: SettingName): string {
  return `${PREFIX}.${name}`;
}
