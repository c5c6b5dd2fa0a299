/**
 * The SQL control surface under a client: three PostgreSQL servers, each with its agent
 * (pgraft.pg_conninfo pointing at it, the extension installed with scripts/install-extension),
 * and a `pg` client timing `SELECT pgraft_get_leader()` and `SELECT pgraft_kv_put(...)` one
 * after another. PostgreSQL comes from the integration tests' machinery
 * (test/support/postgres.ts), which runs it as the postgres user.
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import type { Client } from 'pg';
import { waitFor } from '../test/support/agents';
import { TestPostgres } from '../test/support/postgres';
import { onCleanup } from './cleanup';
import { makeValue } from './kv_request';
import { REPO } from './paths';
import { PgraftCluster } from './pgraft';
import { LatencySummary, summarize } from './stats';

export interface SqlFigure {
  statement: string;
  /** Which node's PostgreSQL the client was connected to. */
  via: 'leader' | 'follower';
  iterations: number;
  opsPerSec: number;
  /** Milliseconds. */
  latencyMs: LatencySummary;
}

export interface SqlResult {
  postgresVersion: string;
  figures: SqlFigure[];
}

async function time(client: Client, statement: string, params: (i: number) => unknown[], iterations: number, warmup: number): Promise<{ ops: number; lat: LatencySummary }> {
  for (let i = 0; i < warmup; i++) await client.query(statement, params(-1 - i));
  const lat = new Float64Array(iterations);
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) {
    const s = performance.now();
    await client.query(statement, params(i));
    lat[i] = performance.now() - s;
  }
  const wall = performance.now() - t0;
  return { ops: iterations / (wall / 1000), lat: summarize(lat) };
}

export async function runSql(iterations: number, valueBytes: number, log: (s: string) => void): Promise<SqlResult> {
  onCleanup(() => TestPostgres.stopAllSync());
  const servers: TestPostgres[] = [];
  const clients: Client[] = [];
  let cluster: PgraftCluster | null = null;
  try {
    execFileSync(path.join(REPO, 'scripts', 'ensure-postgres'), { stdio: 'inherit', timeout: 600_000 });
    for (let i = 1; i <= 3; i++) servers.push(await TestPostgres.start({ conf: [`pgraft.node_id = ${i}`] }));
    execFileSync(path.join(REPO, 'scripts', 'install-extension'), [path.join(servers[0].binDir, 'pg_config')], { stdio: 'ignore' });
    const version = execFileSync(path.join(servers[0].binDir, 'postgres'), ['--version']).toString().trim();
    cluster = await PgraftCluster.create(3);
    cluster.nodes.forEach((n, i) => {
      n.settings['pgraft.pg_conninfo'] = `'${servers[i].conninfo()}'`;
      n.writeConfig();
    });
    const leader = await cluster.startAll();
    const follower = cluster.nodes.find((n) => n !== leader)!;
    const connect = async (id: number) => {
      const c = await servers[id - 1].connect();
      clients.push(c);
      await waitFor(
        `the SQL functions of node ${id} to report leader ${leader.id}`,
        async () => {
          const r = await c.query('SELECT pgraft_get_worker_state() AS s, pgraft_get_leader() AS l');
          return r.rows[0].s === 'RUNNING' && Number(r.rows[0].l) === leader.id;
        },
        60_000,
        100,
      );
      return c;
    };
    const onLeader = await connect(leader.id);
    const onFollower = await connect(follower.id);
    const value = makeValue(valueBytes);
    const figures: SqlFigure[] = [];
    const cases: [string, Client, 'leader' | 'follower', string, (i: number) => unknown[]][] = [
      ['SELECT pgraft_get_leader()', onLeader, 'leader', 'SELECT pgraft_get_leader()', () => []],
      ['SELECT pgraft_kv_put(key, value)', onLeader, 'leader', 'SELECT pgraft_kv_put($1, $2)', (i) => [`sql-${i % 1000}`, value]],
      ['SELECT pgraft_kv_put(key, value)', onFollower, 'follower', 'SELECT pgraft_kv_put($1, $2)', (i) => [`sql-${i % 1000}`, value]],
      ['SELECT pgraft_kv_get(key)', onLeader, 'leader', 'SELECT pgraft_kv_get($1)', (i) => [`sql-${i % 1000}`]],
    ];
    for (const [label, client, via, sql, params] of cases) {
      const n = label.includes('kv_') ? Math.max(1, Math.floor(iterations / 2)) : iterations;
      const r = await time(client, sql, params, n, Math.min(50, n));
      figures.push({ statement: label, via, iterations: n, opsPerSec: r.ops, latencyMs: r.lat });
      log(`  ${label} on the ${via}'s PostgreSQL: p50 ${r.lat.p50.toFixed(2)} ms  p99 ${r.lat.p99.toFixed(2)} ms  (${r.ops.toFixed(0)}/s, ${n} calls)`);
    }
    return { postgresVersion: version, figures };
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await cluster?.stopAll();
    for (const s of servers) await s.stop();
  }
}
