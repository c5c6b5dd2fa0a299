/**
 * A hot standby with its own agent, end to end: node 1's PostgreSQL is the primary, node 2's
 * a streaming standby of it, node 3 a witness (an agent without PostgreSQL). The standby's
 * SQL shows the real cluster from its agent's state file, refuses requests with the SQLSTATE
 * of a read-only transaction, and serves them once PostgreSQL is promoted.
 */
import * as path from 'node:path';
import type { Client } from 'pg';
import { installExtensionFiles } from '../../../agent/postgres/install';
import { LEVEL, TestCluster, cleanupAgents, waitFor } from '../../support/agents';
import { TestPostgres, postgresBinDir } from '../../support/postgres';
import { eventually } from '../../support/system';

const servers: TestPostgres[] = [];
const sessions: Client[] = [];

afterAll(async () => {
  await Promise.all(sessions.map((s) => s.end().catch(() => undefined)));
  await cleanupAgents();
  await Promise.all(servers.map((s) => s.stop()));
}, 60_000);

async function one<T>(sql: Client, text: string): Promise<T> {
  const { rows } = await sql.query(text);
  return Object.values(rows[0])[0] as T;
}

test('on a hot standby, status comes from its agent, requests are refused until promotion, then served', async () => {
  await installExtensionFiles(path.join(postgresBinDir(), 'pg_config'));
  const primary = await TestPostgres.start({ conf: ['pgraft.node_id = 1'] });
  servers.push(primary);
  const c = await TestCluster.create({ size: 3 });
  const [n1, n2, n3] = [c.node(1), c.node(2), c.node(3)];
  n1.settings['pgraft.pg_conninfo'] = `'${primary.conninfo()}'`;
  n1.writeConfig();
  n1.start();
  n3.start();
  await c.waitLeader([n1, n3], 30_000);
  const onPrimary = await primary.connect();
  sessions.push(onPrimary);
  await waitFor('the extension on the primary', async () => (await one<string>(onPrimary, "SELECT count(*) FROM pg_extension WHERE extname = 'pgraft'")) === '1', 20_000);

  const standby = await TestPostgres.start({ standbyOf: primary, conf: ['pgraft.node_id = 2'] });
  servers.push(standby);
  n2.settings['pgraft.pg_conninfo'] = `'${standby.conninfo()}'`;
  n2.writeConfig();
  n2.start();
  const leader = await c.waitLeader([n1, n2, n3], 30_000);
  await n2.p.waitForLog('the standby noticed', (l) => l.msg === 'PostgreSQL is a hot standby: publishing status only', 20_000);

  const onStandby = await standby.connect();
  sessions.push(onStandby);
  expect(await one<boolean>(onStandby, 'SELECT pg_is_in_recovery()')).toBe(true);
  const term = (await leader.status()).term;
  await eventually(async () => {
    const { rows } = await onStandby.query('SELECT node_id, leader_id, current_term, num_nodes, worker_state FROM pgraft_get_cluster_status()');
    expect(rows).toEqual([{ node_id: 2, leader_id: String(leader.id), current_term: String(term), num_nodes: 3, worker_state: 'RUNNING' }]);
  }, 10_000);
  expect((await onStandby.query('SELECT node_id FROM pgraft_get_nodes() ORDER BY node_id')).rows.map((r) => r.node_id)).toEqual([1, 2, 3]);

  // Requests need a server that can NOTIFY; the error says so and where to go.
  await expect(onStandby.query("SELECT pgraft_kv_put('k', 'v')")).rejects.toMatchObject({ code: '25006', hint: expect.stringMatching(/primary/) });
  expect(await one<boolean>(onPrimary, "SELECT pgraft_kv_put('k', 'from the primary')")).toBe(true);

  // Promoted, the same server's requests reach node 2's agent.
  await standby.promote();
  await n2.p.waitForLog('the promotion', (l) => l.level === LEVEL.info && l.msg === 'PostgreSQL was promoted: serving pgraft requests', 20_000);
  expect(await one<boolean>(onStandby, 'SELECT pg_is_in_recovery()')).toBe(false);
  expect(await one<string>(onStandby, "SELECT pgraft_kv_get('k')")).toBe('from the primary');
  expect(await one<boolean>(onStandby, "SELECT pgraft_kv_put('k', 'from node 2')")).toBe(true);
  expect(await one<string>(onPrimary, "SELECT pgraft_kv_get('k')")).toBe('from node 2');
}, 120_000);
