/**
 * The pieces of the CLI that decide without I/O: how settings become agent options (and
 * when a node bootstraps), which exit code an answer gets, and the status table.
 */
import pino from 'pino';
import { PgraftConfig, SettingName, loadConfig } from '../../../agent/config';
import { agentOptions } from '../../../agent/cli/agent_options';
import { CommandError } from '../../../agent/cli/client';
import { ExitCode, exitCodeForStatus } from '../../../agent/cli/exit_codes';
import { formatStatus } from '../../../agent/cli/status_table';
import { AgentMetrics } from '../../../agent/http/metrics';
import type { StatusView } from '../../../agent/http/status';
import { StateRole } from '../../../agent/raft/types';

function config(overrides: Partial<Record<SettingName, string>>): PgraftConfig {
  return loadConfig({ files: [], env: {}, overrides: { node_id: '2', data_dir: '/var/lib/pgraft', ...overrides } }).config;
}

const logger = pino({ level: 'silent' });
const metrics = new AgentMetrics({ processMetrics: false });
const options = (c: PgraftConfig, bootstrap = false, joining = false) => agentOptions(c, { bootstrap, joining }, logger, metrics);

describe('agent options from the configuration', () => {
  const cluster = '1=10.0.0.1:7001,2=10.0.0.2:7001,3=10.0.0.3:7001';

  test('a founding member bootstraps from initial_cluster, without API addresses, so every founder writes the same log', () => {
    const o = options(config({ initial_cluster: cluster, address: '10.0.0.2', api_port: '8002', rpc_timeout: '7s' }));
    expect(o.bootstrap).toEqual([
      { id: 1, raftAddress: '10.0.0.1:7001' },
      { id: 2, raftAddress: '10.0.0.2:7001' },
      { id: 3, raftAddress: '10.0.0.3:7001' },
    ]);
    expect(o).toMatchObject({ nodeId: 2, raftHost: '10.0.0.2', raftPort: 7001, apiAddress: '10.0.0.2:8002', requestTimeoutMs: 6750, tls: undefined });
  });

  test('--bootstrap without initial_cluster starts a one-node cluster; without either the node waits to be added', () => {
    expect(options(config({ address: '10.0.0.2' }), true).bootstrap).toEqual([{ id: 2, raftAddress: '10.0.0.2:7001' }]);
    expect(options(config({})).bootstrap).toBeUndefined();
    expect(options(config({}), false, true).bootstrap).toBeUndefined();
  });

  test('--join on a founding member joins the running cluster: it never bootstraps', () => {
    expect(options(config({ initial_cluster: cluster }), false, false).bootstrap).toHaveLength(3);
    expect(options(config({ initial_cluster: cluster }), false, true).bootstrap).toBeUndefined();
  });

  test('contradictions are usage errors', () => {
    const usage = (f: () => unknown, message: RegExp) => {
      try {
        f();
        throw new Error('no error');
      } catch (e) {
        expect(e).toBeInstanceOf(CommandError);
        expect((e as CommandError).exitCode).toBe(ExitCode.USAGE);
        expect((e as CommandError).message).toMatch(message);
      }
    };
    usage(() => options(config({}), true, true), /contradict/);
    usage(() => options(config({ initial_cluster: '1=10.0.0.1:7001' }), true), /does not name this node \(2\)/);
  });

  test('TLS is on with all three files', () => {
    const o = options(config({ tls_cert_file: '/dev/null', tls_key_file: '/dev/null', tls_ca_file: '/dev/null' }));
    expect(o.tls).toEqual({ certFile: '/dev/null', keyFile: '/dev/null', caFile: '/dev/null' });
  });
});

test('exit codes for API answers', () => {
  expect([200, 400, 401, 404, 409, 413, 500, 502, 503, 504].map(exitCodeForStatus)).toEqual([0, 1, 6, 1, 1, 1, 1, 1, 4, 5]);
});

test('the status table shows every member with the leader view of replication', () => {
  const base: StatusView = {
    nodeId: 2,
    clusterId: 'prod',
    state: 'RUNNING',
    failure: null,
    version: '0.1.0',
    startedAt: '2026-12-05T10:00:00.000Z',
    role: StateRole.Follower,
    term: 4,
    leaderId: 1,
    leaderApi: '10.0.0.1:7002',
    commitIndex: 90,
    appliedIndex: 90,
    lastIndex: 90,
    firstIndex: 1,
    members: [],
  };
  const leader: StatusView = {
    ...base,
    nodeId: 1,
    role: StateRole.Leader,
    lastIndex: 100,
    members: [
      { id: 1, raftAddress: '10.0.0.1:7001', apiAddress: '10.0.0.1:7002', role: 'voter', leader: true, matchIndex: 100, lag: 0, lastContactMs: 0 },
      { id: 2, raftAddress: '10.0.0.2:7001', apiAddress: '', role: 'voter', leader: false, matchIndex: 90, lag: 10, lastContactMs: 40 },
      { id: 3, raftAddress: '10.0.0.3:7001', apiAddress: '', role: 'learner', leader: false, matchIndex: 0, lag: 100, lastContactMs: null },
    ],
  };
  expect(formatStatus(base, leader, new Map([[1, '0.2.0'], [2, '0.1.0']])).split('\n')).toEqual([
    'cluster prod: node 2 is follower (RUNNING), term 4, leader 1, commit 90, applied 90, last 90',
    'ID  ADDRESS        API            ROLE      TERM  MATCH  LAG  LAST CONTACT  VERSION',
    '1   10.0.0.1:7001  10.0.0.1:7002  leader    4     100    0    -             0.2.0',
    '2   10.0.0.2:7001  -              follower  4     90     10   40ms ago      0.1.0',
    '3   10.0.0.3:7001  -              learner   4     0      100  never         ?',
    '(members as the leader, node 1, sees them; last contact is since it last heard from each)',
  ]);
});
