import pino, { Logger } from 'pino';
import {
  ConfigError,
  LoadedConfig,
  ReloadResult,
  SettingName,
  describeChange,
  formatIssue,
  loadConfig,
  reloadConfig,
  resolveConfigFiles,
} from '../config';
import { ApiServer } from '../http/api';
import { AgentMetrics } from '../http/metrics';
import { MetricsServer } from '../http/metrics_server';
import { Agent, FencedError } from '../node';
import { TlsMaterial, agentTlsClient, readTlsMaterial } from '../transport';
import { agentOptions, endpoint, agentDeadline } from './agent_options';
import { CommandError } from './client';
import { ExitCode } from './exit_codes';
import { heapFlagsApplied } from './heap_at_start';
import { joinCluster } from './join';
import { PostgresLink } from './postgres_link';

export interface AgentCommandArgs {
  /** --config FILE; else the PostgreSQL data directory's postgresql.conf. */
  config?: string;
  /** --pgdata DIR: the PostgreSQL data directory (PGDATA when omitted). */
  pgdata?: string;
  bootstrap: boolean;
  /** --join HOST:PORT: the API of a member to be added through. */
  join?: string;
  joinTimeoutMs: number;
  /** --learner: join as a learner only. */
  learner: boolean;
}

/** What each live setting changes in the running process; the others wait for a restart. */
const APPLY: Partial<Record<SettingName, (ctx: RunningAgent) => void>> = {
  log_level: (r) => (r.logger.level = r.loaded.config.log_level),
  election_timeout: (r) => r.agent.setTimeouts(r.loaded.config.election_timeout, r.loaded.config.heartbeat_interval),
  heartbeat_interval: (r) => r.agent.setTimeouts(r.loaded.config.election_timeout, r.loaded.config.heartbeat_interval),
  snapshot_interval: (r) => r.agent.updateSettings({ snapshotInterval: r.loaded.config.snapshot_interval }),
  max_log_entries: (r) => r.agent.updateSettings({ maxLogEntries: r.loaded.config.max_log_entries }),
  compaction_threshold: (r) => r.agent.updateSettings({ compactionThreshold: r.loaded.config.compaction_threshold }),
  batch_size: (r) => r.agent.updateSettings({ batchSize: r.loaded.config.batch_size }),
  rpc_timeout: (r) => r.agent.updateSettings({ requestTimeoutMs: agentDeadline(r.loaded.config.rpc_timeout) }),
  // The API reads the token on every request.
  auth_token: () => undefined,
  auth_token_file: () => undefined,
};

interface RunningAgent {
  agent: Agent;
  logger: Logger;
  loaded: LoadedConfig;
}

function printConfigProblem(e: ConfigError): void {
  for (const w of e.warnings) process.stderr.write(`pgraft: warning: ${formatIssue(w)}\n`);
  process.stderr.write(`pgraft: ${e.message}\n`);
}

/** The configuration as `pgraft agent` reads it; null, after saying why, when it cannot be used. */
export function loadAgentConfig(config: string | undefined, pgdata: string | undefined): LoadedConfig | null {
  try {
    return loadConfig({ files: resolveConfigFiles({ configFile: config, dataDir: pgdata }) });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    printConfigProblem(e);
    return null;
  }
}

/**
 * `pgraft agent`: loads the configuration, starts the agent, its HTTP API and (when enabled)
 * its metrics endpoint, joins a cluster if asked, and runs until SIGTERM or SIGINT.
 * SIGHUP reloads the configuration files. Resolves with the process's exit code.
 */
export async function runAgent(args: AgentCommandArgs): Promise<number> {
  if (args.learner && args.join === undefined) {
    process.stderr.write('pgraft: --learner applies to --join only\n    hint: pgraft agent --join HOST:PORT --learner\n');
    return ExitCode.USAGE;
  }
  const loaded = loadAgentConfig(args.config, args.pgdata);
  if (!loaded) return ExitCode.USAGE;
  const c = loaded.config;
  const logger = pino(
    { level: c.log_level, base: { node: c.node_id, pid: process.pid } },
    pino.destination({ dest: 1, sync: true }),
  );
  for (const w of loaded.warnings) logger.warn({ setting: w.setting }, formatIssue(w));
  if (heapFlagsApplied.length === 0) logger.info({ execArgv: process.execArgv }, 'heap flags given to node are kept as they are');

  const metrics = new AgentMetrics({ processMetrics: c.metrics_enabled });
  let options;
  try {
    options = agentOptions(c, { bootstrap: args.bootstrap, joining: args.join !== undefined }, logger, metrics);
  } catch (e) {
    if (!(e instanceof CommandError)) throw e;
    process.stderr.write(`pgraft: ${e.message}${e.hint ? `\n    hint: ${e.hint}` : ''}\n`);
    return e.exitCode;
  }
  if (c.address === '0.0.0.0' || c.address === '::') {
    logger.warn(
      { address: c.address },
      `pgraft.address = '${c.address}' listens on every interface, but it is also the address announced to the other nodes, which cannot connect to it; ` +
        `set pgraft.listen_address = '${c.address}' and pgraft.address to this machine's address on the cluster network`,
    );
  }
  const listenHost = c.listen_address ?? c.address;

  let apiTls: TlsMaterial | undefined;
  let agent: Agent;
  try {
    if (c.api_tls && options.tls) apiTls = await readTlsMaterial(options.tls);
    agent = await Agent.start(options);
  } catch (e) {
    logger.fatal({ err: e }, `the agent could not start: ${(e as Error).message}`);
    return e instanceof FencedError ? ExitCode.FENCED : ExitCode.FAILED;
  }
  const running: RunningAgent = { agent, logger, loaded };
  const api = new ApiServer({
    agent,
    clusterId: c.cluster_id,
    host: listenHost,
    port: c.api_port,
    authToken: () => running.loaded.config.auth_token,
    electionTimeoutMs: () => running.loaded.config.election_timeout,
    forwardTimeoutMs: Math.max(c.rpc_timeout * 2, 5000),
    tls: apiTls,
    logger,
  });
  const metricsServer = c.metrics_enabled ? new MetricsServer({ agent, host: listenHost, port: c.metrics_port, logger }) : null;
  try {
    await api.start();
    logger.info({ port: api.port, scheme: api.scheme }, `HTTP API at ${api.scheme}://${endpoint(c.address, api.port)}`);
    await metricsServer?.start();
  } catch (e) {
    logger.fatal({ err: e }, `the agent could not start: ${(e as Error).message}`);
    await api.stop();
    await agent.stop();
    return ExitCode.FAILED;
  }
  // The SQL control surface, unless this node has no PostgreSQL (a witness).
  const postgres = c.pg_conninfo.trim() === '' ? null : new PostgresLink(agent, c.pg_conninfo, logger, c.state_file_interval);
  postgres?.start();

  return new Promise<number>((resolve) => {
    let stopping = false;
    const shutdown = async (why: string, code: number) => {
      if (stopping) return;
      stopping = true;
      logger.info({ reason: why }, `stopping (${why})`);
      await postgres?.stop();
      await Promise.all([api.stop(), metricsServer?.stop()]);
      await agent.stop();
      resolve(code);
    };
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, `${signal} again while stopping: exiting at once`);
        resolve(ExitCode.FAILED);
        return;
      }
      void shutdown(signal, ExitCode.OK);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    process.on('SIGHUP', () => reload(running));
    agent.on('fatal', (e: Error) => void shutdown('the agent failed', e instanceof FencedError ? ExitCode.FENCED : ExitCode.FAILED));

    if (args.join !== undefined) {
      const hadLog = agent.status().lastIndex > 0;
      joinCluster({
        agent,
        logger,
        target: args.join,
        self: { id: c.node_id, raft: endpoint(c.address, c.port), api: endpoint(c.address, c.api_port) },
        token: c.auth_token ?? undefined,
        tls: apiTls && agentTlsClient(apiTls),
        timeoutMs: args.joinTimeoutMs,
        learner: args.learner,
      }).then(
        () => undefined,
        (e: CommandError) => {
          if (stopping) return;
          if (hadLog) {
            // A member restarted with its unit's --join: it already holds the cluster's log.
            logger.warn({ target: args.join }, `could not confirm membership through ${args.join}: ${e.message}; running on with the log on disk`);
            return;
          }
          logger.fatal({ target: args.join }, `could not join the cluster through ${args.join}: ${e.message}${e.hint ? ` (${e.hint})` : ''}`);
          void shutdown('join failed', e.exitCode);
        },
      );
    }
  });
}

/** SIGHUP: read the files again; apply what can change live, report what needs a restart. */
function reload(r: RunningAgent): void {
  const result: ReloadResult = reloadConfig(r.loaded);
  if (!result.ok) {
    r.logger.error(
      { errors: result.errors.map(formatIssue) },
      `configuration reload failed; the running configuration stays in force: ${result.errors.map(formatIssue).join('; ')}`,
    );
    return;
  }
  r.loaded = result.loaded;
  for (const w of result.warnings) r.logger.warn({ setting: w.setting }, formatIssue(w));
  const inEffect: string[] = [];
  const notUsed: string[] = [];
  for (const change of result.applied) {
    const apply = APPLY[change.name];
    if (apply) {
      apply(r);
      inEffect.push(describeChange(change));
    } else {
      notUsed.push(describeChange(change));
    }
  }
  r.logger.info(
    { applied: inEffect, unused: notUsed, pendingRestart: result.pendingRestart.map(describeChange) },
    inEffect.length + notUsed.length + result.pendingRestart.length === 0
      ? 'configuration reloaded: nothing changed'
      : `configuration reloaded: ${inEffect.length} change(s) in effect`,
  );
  if (notUsed.length > 0) {
    r.logger.info({ settings: notUsed }, `changed settings that this agent process does not use: ${notUsed.join('; ')}`);
  }
  if (result.pendingRestart.length > 0) {
    r.logger.warn(
      { settings: result.pendingRestart.map((ch) => ch.setting) },
      `changed settings that take effect only after a restart of the agent: ${result.pendingRestart.map(describeChange).join('; ')}`,
    );
  }
}
