/**
 * The request functions end to end: SQL -> loopback -> pgraft.request + NOTIFY -> bridge
 * -> ControlPlane -> reply -> SQL, in autocommit, inside BEGIN ... COMMIT and under
 * REPEATABLE READ; the agent's refusals as ERRORs with HINTs; timeouts that never hang.
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { expectSqlError, Harness, startHarness, value, waitFor } from './harness';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
}, 120_000);

afterAll(async () => {
  await h?.close();
});

afterEach(() => {
  h.fake.unhold();
  h.fake.leaderId = 1;
  h.fake.changeInProgress = false;
});

const modes: Array<[string, string | null]> = [
  ['autocommit', null],
  ['BEGIN ... COMMIT', 'BEGIN'],
  ['REPEATABLE READ', 'BEGIN ISOLATION LEVEL REPEATABLE READ'],
  ['SERIALIZABLE', 'BEGIN ISOLATION LEVEL SERIALIZABLE'],
];

describe.each(modes)('in %s', (_mode, begin) => {
  /** Run `text` the way this mode says; in a transaction, a snapshot is taken first. */
  async function call(text: string, params?: unknown[]) {
    if (!begin) return (await h.sql.query(text, params)).rows;
    await h.sql.query(begin);
    try {
      await h.sql.query('SELECT count(*) FROM pg_class'); // the snapshot of REPEATABLE READ is taken here
      return (await h.sql.query(text, params)).rows;
    } finally {
      await h.sql.query('COMMIT');
    }
  }

  test('pgraft_init', async () => {
    expect(await call('SELECT pgraft_init() AS ok')).toEqual([{ ok: true }]);
    expect(h.fake.calls.at(-1)).toEqual({ op: 'init', args: [] });
  });

  test('pgraft_add_node and pgraft_remove_node', async () => {
    expect(await call("SELECT pgraft_add_node(4, '192.168.1.14', 7004) AS ok")).toEqual([{ ok: true }]);
    expect(h.fake.nodes.map((n) => n.id)).toContain(4);
    expect(await call('SELECT pgraft_remove_node(4) AS ok')).toEqual([{ ok: true }]);
    expect(h.fake.nodes.map((n) => n.id)).not.toContain(4);
  });

  test('pgraft_transfer_leadership', async () => {
    expect(await call('SELECT pgraft_transfer_leadership(2) AS ok')).toEqual([{ ok: true }]);
    expect(h.fake.calls.at(-1)).toEqual({ op: 'transferLeadership', args: [2] });
    h.fake.leaderId = 1;
    expect(await call('SELECT pgraft_transfer_leadership() AS ok')).toEqual([{ ok: true }]);
    expect(h.fake.calls.at(-1)).toEqual({ op: 'transferLeadership', args: [null] });
  });

  test('pgraft_log_append and pgraft_log_get_entry', async () => {
    const [{ index }] = await call("SELECT pgraft_log_append('deploy 42 finished') AS index");
    expect(index).toBe(String(h.fake.entries.length));
    expect(await call('SELECT pgraft_log_get_entry($1) AS e', [index])).toEqual([
      { e: { index: Number(index), term: h.fake.term, type: 'normal', data: 'deploy 42 finished' } },
    ]);
    expect(await call('SELECT pgraft_log_get_entry(999999) AS e')).toEqual([{ e: null }]);
  });

  test('the key-value functions', async () => {
    expect(await call("SELECT pgraft_kv_put('config/mode', 'active') AS ok")).toEqual([{ ok: true }]);
    expect(await call("SELECT pgraft_kv_get('config/mode') AS v")).toEqual([{ v: 'active' }]);
    expect(await call('SELECT key FROM pgraft_kv_list_keys()')).toEqual([{ key: 'config/mode' }]);
    const [stats] = await call('SELECT * FROM pgraft_kv_get_stats()');
    expect(stats).toMatchObject({ num_keys: '1', total_bytes: String('config/mode'.length + 'active'.length) });
    expect(await call("SELECT pgraft_kv_delete('config/mode') AS ok")).toEqual([{ ok: true }]);
    expect(await call("SELECT pgraft_kv_delete('config/mode') AS ok")).toEqual([{ ok: false }]);
    expect(await call("SELECT pgraft_kv_get('config/mode') AS v")).toEqual([{ v: null }]);
  });

  test('pgraft_log_get_replication_status', async () => {
    const rows = await call('SELECT * FROM pgraft_log_get_replication_status()');
    expect(rows).toEqual([
      { node_id: 2, address: '10.0.1.12', port: 7002, role: 'voter', match_index: '10', next_index: '11', lag: '2',
        state: 'replicate', inflight: 0, last_contact: new Date(1700000000000) },
      { node_id: 3, address: '10.0.1.13', port: 7003, role: 'learner', match_index: '7', next_index: '8', lag: '5',
        state: 'replicate', inflight: 0, last_contact: new Date(1700000000500) },
    ]);
  });
});

test('a request is not undone by the caller\'s rollback (it left in its own transaction)', async () => {
  await h.sql.query('BEGIN');
  await h.sql.query("SELECT pgraft_kv_put('rolled', 'back')");
  await h.sql.query('ROLLBACK');
  expect(h.fake.kv.get('rolled')).toBe('back');
});

test('on a follower, pgraft_add_node fails with a HINT naming the leader', async () => {
  h.fake.leaderId = 2;
  await expectSqlError(h.sql.query("SELECT pgraft_add_node(4, '192.168.1.14', 7004)"), {
    code: '55000',
    message: /not the Raft leader; node 2 is/,
    hint: /10\.0\.1\.12:7002/,
  });
});

test('pgraft_add_node is refused with no leader, or during another membership change', async () => {
  h.fake.leaderId = 0;
  await expectSqlError(h.sql.query("SELECT pgraft_add_node(4, '192.168.1.14', 7004)"), {
    code: '55000', message: /no Raft leader is known/, hint: /pgraft_get_leader\(\) > 0/,
  });
  h.fake.leaderId = 1;
  h.fake.changeInProgress = true;
  await expectSqlError(h.sql.query("SELECT pgraft_add_node(4, '192.168.1.14', 7004)"), {
    code: '55006', message: /another membership change is in progress/, hint: /pgraft_get_nodes\(\)/,
  });
});

test('an unknown node cannot be removed', async () => {
  await expectSqlError(h.sql.query('SELECT pgraft_remove_node(9)'), {
    code: '42704', message: /node 9 is not a member/, hint: /pgraft_get_nodes/,
  });
});

test('an agent stuck in an operation: ERROR after pgraft.rpc_timeout, no hang', async () => {
  h.fake.hold();
  await h.sql.query("SET pgraft.rpc_timeout = '300ms'");
  try {
    const t = Date.now();
    await expectSqlError(h.sql.query("SELECT pgraft_kv_put('slow', 'x')"), {
      code: '58000', message: /did not finish the request within 300 ms/, detail: /may still take effect/,
    });
    expect(Date.now() - t).toBeLessThan(2000);
  } finally {
    await h.sql.query('RESET pgraft.rpc_timeout');
    h.fake.unhold();
  }
});

test('an agent that publishes but does not listen: the request is withdrawn after the timeout', async () => {
  const bridge = h.bridge as unknown as { listener: { close(): Promise<void> } | null };
  await bridge.listener?.close();
  bridge.listener = null;
  await h.sql.query("SET pgraft.rpc_timeout = '300ms'");
  try {
    const calls = h.fake.calls.length;
    const t = Date.now();
    await expectSqlError(h.sql.query("SELECT pgraft_kv_put('unheard', 'x')"), {
      code: '58000', message: /did not answer within 300 ms/, detail: /withdrawn and will not be carried out/,
    });
    expect(Date.now() - t).toBeLessThan(2000);
    await h.restartBridge(); // the new bridge claims what is pending: nothing
    await h.sql.query("SELECT pgraft_kv_put('heard', 'x')");
    expect(h.fake.calls.slice(calls).map((c) => c.args[0])).toEqual(['heard']);
  } finally {
    await h.sql.query('RESET pgraft.rpc_timeout');
  }
});

test('with the agent stopped, requests fail at once and say so', async () => {
  await h.bridge.stop();
  try {
    const t = Date.now();
    await expectSqlError(h.sql.query("SELECT pgraft_kv_put('k', 'v')"), {
      code: '58000', message: /agent is not running on this server \(STOPPED\)/, hint: /Start the agent/,
    });
    expect(Date.now() - t).toBeLessThan(500);
    // Dead without a word (its file goes stale): after pgraft.status_timeout the same.
    const file = path.join(h.pg.dataDir, 'pgraft', 'status.json');
    const status = JSON.parse(await fs.readFile(file, 'utf8'));
    await fs.writeFile(file, JSON.stringify({ ...status, workerState: 'RUNNING', updatedAtMs: Date.now() - 60_000 }));
    await expectSqlError(h.sql.query("SELECT pgraft_kv_get('k')"), { code: '58000', message: /not running/ });
  } finally {
    await h.restartBridge();
  }
});

test('requests in another database than the agent\'s are refused with directions', async () => {
  await h.sql.query('CREATE DATABASE elsewhere');
  const other = await h.pg.connect('postgres', 'elsewhere');
  try {
    await other.query('CREATE EXTENSION pgraft');
    expect(await value(other, 'SELECT pgraft_get_leader()')).toBe('1'); // status works in any database
    await expectSqlError(other.query("SELECT pgraft_kv_put('k', 'v')"), {
      code: '55000', message: /serves database postgres, not elsewhere/, hint: /Connect to database postgres/,
    });
  } finally {
    await other.end();
  }
});

test('a bad pgraft.rpc_timeout is an ERROR naming the setting', async () => {
  await h.sql.query("SET pgraft.rpc_timeout = 'soon'");
  try {
    await expectSqlError(h.sql.query("SELECT pgraft_kv_put('k', 'v')"), {
      code: '22023', message: /invalid value for setting "pgraft.rpc_timeout": "soon"/, hint: /5s/,
    });
  } finally {
    await h.sql.query('RESET pgraft.rpc_timeout');
  }
});

test('a broken loopback connection is reopened by the next call', async () => {
  await h.sql.query("SELECT pgraft_kv_put('before', 'x')");
  await h.sql.query("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name = 'pgraft_rpc'");
  await expect(h.sql.query("SELECT pgraft_kv_put('cut', 'x')")).rejects.toThrow();
  expect(await value(h.sql, "SELECT pgraft_kv_put('after', 'x')")).toBe(true);
});

test('latency: pgraft_kv_put well under 10 ms end to end', async () => {
  await waitFor('RUNNING', async () => (await value(h.sql, 'SELECT pgraft_get_worker_state()')) === 'RUNNING');
  for (let i = 0; i < 20; i++) await h.sql.query('SELECT pgraft_kv_put($1, $2)', [`warm${i}`, 'x']);
  const times: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t = process.hrtime.bigint();
    await h.sql.query('SELECT pgraft_kv_put($1, $2)', [`k${i}`, 'v']);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  const [p50, p99] = [times[100], times[198]];
  console.log(`pgraft_kv_put end to end: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms (200 calls)`);
  expect(p50).toBeLessThan(10);
});
