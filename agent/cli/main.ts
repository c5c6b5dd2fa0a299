#!/usr/bin/env node
// First: heap settings must precede the allocations of loading everything else.
import './heap_at_start';
import type { Argv } from 'yargs';
import yargs from 'yargs/yargs';
import { TIME_UNITS, parseNumber } from '../config/values';
import { VERSION } from '../version';
import { CommandError, apiTarget } from './client';
import * as control from './control';
import { ExitCode } from './exit_codes';
import { forceNewCluster } from './force_new_cluster';
import { rollingRestart } from './rolling_restart';
import { runAgent } from './run_agent';

type Action = () => Promise<number>;

/** A time from the command line: 500ms, 30s, 2min; a bare number is milliseconds, as in postgresql.conf. */
function duration(text: unknown, option: string): number {
  const n = parseNumber(String(text), TIME_UNITS);
  if (!n.ok || n.value <= 0) {
    throw new CommandError(`--${option} ${String(text)} is not a time`, ExitCode.USAGE, 'give a time such as 500ms, 30s or 2min (a bare number is milliseconds)');
  }
  return n.value;
}

interface ControlArgs {
  api: string;
  cacert?: string;
  token?: string;
  json: boolean;
  'request-timeout': string;
}

function controlOptions(argv: Argv): Argv<ControlArgs> {
  return argv
    .option('api', {
      type: 'string',
      default: '127.0.0.1:7002',
      describe: "host:port of an agent's HTTP API (pgraft.api_port); https://host:port when it serves HTTPS (pgraft.api_tls)",
    })
    .option('cacert', {
      type: 'string',
      describe: "CA certificate (PEM) to trust for an HTTPS API: the cluster's pgraft.tls_ca_file",
    })
    .option('token', {
      type: 'string',
      describe: 'API token for calls that change the cluster (default: PGRAFT_AUTH_TOKEN)',
    })
    .option('json', { type: 'boolean', default: false, describe: "print the API's JSON answer" })
    .option('request-timeout', {
      type: 'string',
      default: '10s',
      describe: 'how long to wait for the agent to answer',
    }) as unknown as Argv<ControlArgs>;
}

/** Where the commands that read the node's configuration find it. */
function configOptions(argv: Argv) {
  return argv
    .option('config', {
      alias: 'c',
      type: 'string',
      describe: 'configuration file (postgresql.conf syntax); default: postgresql.conf in the PostgreSQL data directory',
    })
    .option('pgdata', {
      alias: 'D',
      type: 'string',
      describe: 'PostgreSQL data directory, for postgresql.conf and postgresql.auto.conf (default: PGDATA)',
    });
}

function ctl(a: ControlArgs): control.ControlOptions {
  return {
    ...apiTarget(a.api, a.cacert),
    token: a.token ?? (process.env.PGRAFT_AUTH_TOKEN || undefined),
    json: a.json,
    timeoutMs: duration(a['request-timeout'], 'request-timeout'),
  };
}

async function main(argv: string[]): Promise<number> {
  let action: Action | null = null;
  let usageError: string | null = null;
  const set = (f: Action) => {
    action = f;
  };

  const cli = yargs(argv)
    .scriptName('pgraft')
    .usage('$0 <command> [options]\n\nRun a pgraft agent, or control a running cluster through an agent\'s HTTP API.')
    .command(
      'agent',
      'run the agent beside this PostgreSQL',
      (y) =>
        configOptions(y)
          .option('bootstrap', {
            type: 'boolean',
            default: false,
            describe: 'start a new cluster if the data directory is empty (pgraft.initial_cluster, or this node alone)',
          })
          .option('join', {
            type: 'string',
            describe: 'host:port of a member\'s API: have this node added to that cluster (learner, catch up, voter)',
          })
          .option('join-timeout', { type: 'string', default: '2min', describe: 'how long to keep trying to join' })
          .option('learner', {
            type: 'boolean',
            default: false,
            describe: 'with --join: join as a learner (non-voting) only; promote it later with pgraft add-voter',
          })
          .example('$0 agent --config /etc/postgresql/15/main/postgresql.conf --bootstrap', 'start the first node of a new cluster')
          .example('$0 agent -D /var/lib/postgresql/15/main --join 10.0.1.11:7002', 'add this node to a running cluster'),
      (a) =>
        set(() =>
          runAgent({
            config: a.config,
            pgdata: a.pgdata,
            bootstrap: a.bootstrap,
            join: a.join,
            joinTimeoutMs: duration(a['join-timeout'], 'join-timeout'),
            learner: a.learner,
          }),
        ),
    )
    .command(
      'status',
      'show the cluster as a node sees it: members, roles, replication',
      (y) => controlOptions(y),
      (a) => set(() => control.status(ctl(a))),
    )
    .command(
      'health',
      'exit 0 if the node runs and the cluster has a leader; 4 if not, 3 if unreachable',
      (y) => controlOptions(y),
      (a) => set(() => control.health(ctl(a))),
    )
    .command(
      'add-voter <id> <raft-addr>',
      'add a voting member: it joins as a learner, catches up, then becomes a voter',
      (y) =>
        controlOptions(y)
          .positional('id', { type: 'string', describe: 'node id of the new member' })
          .positional('raft-addr', { type: 'string', describe: 'host:port of its Raft port' })
          .option('api-addr', { type: 'string', describe: 'host:port of its HTTP API' })
          .option('timeout', { type: 'string', default: '60s', describe: 'how long it may take to catch up' }),
      (a) =>
        set(() =>
          control.addMember(ctl(a), control.parseNodeId(a.id, 'ID'), String(a['raft-addr']), a['api-addr'], false, duration(a.timeout, 'timeout')),
        ),
    )
    .command(
      'add-learner <id> <raft-addr>',
      'add a non-voting member (learner) that receives the log but does not vote',
      (y) =>
        controlOptions(y)
          .positional('id', { type: 'string', describe: 'node id of the new member' })
          .positional('raft-addr', { type: 'string', describe: 'host:port of its Raft port' })
          .option('api-addr', { type: 'string', describe: 'host:port of its HTTP API' }),
      (a) => set(() => control.addMember(ctl(a), control.parseNodeId(a.id, 'ID'), String(a['raft-addr']), a['api-addr'], true, 60_000)),
    )
    .command(
      'remove <id>',
      'remove a member (voter or learner) from the cluster',
      (y) => controlOptions(y).positional('id', { type: 'string', describe: 'node id of the member to remove' }),
      (a) => set(() => control.remove(ctl(a), control.parseNodeId(a.id, 'ID'))),
    )
    .command(
      'transfer-leadership',
      'hand leadership to another voter (default: the most up-to-date one)',
      (y) => controlOptions(y).option('target', { type: 'string', describe: 'node id of the new leader' }),
      (a) => set(() => control.transferLeadership(ctl(a), a.target === undefined ? undefined : control.parseNodeId(a.target, '--target'))),
    )
    .command(
      'wait-sync',
      'wait until a member holds every entry the leader has',
      (y) =>
        controlOptions(y)
          .option('node', { type: 'string', demandOption: true, describe: 'node id of the member' })
          .option('timeout', { type: 'string', default: '60s', describe: 'how long to wait' }),
      (a) => set(() => control.waitSync(ctl(a), control.parseNodeId(a.node, '--node'), duration(a.timeout, 'timeout'))),
    )
    .command(
      'snapshot',
      'take a snapshot on the node now (compacting its log)',
      (y) => controlOptions(y),
      (a) => set(() => control.snapshot(ctl(a))),
    )
    .command(
      'rolling-restart',
      'restart every member in turn with your command (an upgrade: install first), keeping a leader: followers first, the leader last after handing over',
      (y) =>
        controlOptions(y)
          .option('exec', {
            type: 'string',
            demandOption: true,
            describe: "shell command that restarts one node's agent; NODE_ID, NODE_HOST, NODE_API, NODE_RAFT and NODE_ROLE name the node",
          })
          .option('node-timeout', { type: 'string', default: '5min', describe: 'per node: how long the command, the return and the catch-up may take' })
          .option('dry-run', { type: 'boolean', default: false, describe: 'print the order and each node\'s variables; restart nothing' })
          .option('nodes', { type: 'string', describe: 'restart only these members, e.g. 2 or 2,3 (one first, to watch a new version)' })
          .example(
            '$0 rolling-restart --api 10.0.1.11:7002 --exec \'ssh "$NODE_HOST" sudo systemctl restart pgraft-agent\'',
            'restart every agent, one at a time',
          ),
      (a) =>
        set(() =>
          rollingRestart({
            ...ctl(a),
            exec: String(a.exec),
            nodeTimeoutMs: duration(a['node-timeout'], 'node-timeout'),
            dryRun: a['dry-run'],
            nodes: a.nodes === undefined ? undefined : String(a.nodes).split(',').map((id) => control.parseNodeId(id.trim(), '--nodes')),
          }),
        ),
    )
    .command(
      'force-new-cluster',
      'recovery after the quorum is lost for good: rewrite this stopped node\'s data so that it is the only member, keeping its log',
      (y) =>
        configOptions(y)
          .option('yes', { type: 'boolean', default: false, describe: 'do it; without --yes the plan is printed and nothing is written' })
          .example('$0 force-new-cluster --config /etc/postgresql/15/main/postgresql.conf --yes', 'make this node a one-member cluster'),
      (a) => set(() => forceNewCluster({ config: a.config, pgdata: a.pgdata, yes: a.yes })),
    )
    .demandCommand(1, 'name a command')
    .recommendCommands()
    .strict()
    .help()
    .alias('help', 'h')
    .version(VERSION)
    .epilog('Exit codes: 0 ok, 1 failed, 2 usage, 3 unreachable, 4 unavailable (no leader / unhealthy), 5 timeout, 6 unauthorized. See docs/cli.md.')
    .fail((msg, err) => {
      if (err) throw err;
      usageError = msg;
    })
    .wrap(Math.min(110, process.stdout.columns || 110));

  try {
    await cli.parseAsync();
  } catch (e) {
    if (!(e instanceof CommandError)) throw e;
    usageError = e.message;
  }
  if (usageError !== null) {
    process.stderr.write(`pgraft: ${usageError}\nRun "pgraft --help" or "pgraft <command> --help" for usage.\n`);
    return ExitCode.USAGE;
  }
  const run = action as Action | null;
  if (run === null) return ExitCode.OK; // --help or --version
  try {
    return await run();
  } catch (e) {
    if (!(e instanceof CommandError)) throw e;
    process.stderr.write(`pgraft: ${e.message}${e.hint ? `\n    hint: ${e.hint}` : ''}\n`);
    return e.exitCode;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`pgraft: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(ExitCode.FAILED);
  },
);
