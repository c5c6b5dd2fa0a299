/**
 * Who may drive the agent: superusers and members of pgraft_admin. Anyone else gets
 * "permission denied", cannot reach the request table, and cannot make the agent act by
 * sending NOTIFYs of their own. Arguments are checked with clear ERRORs, and no key,
 * value or address can inject SQL.
 */
import type { Client } from 'pg';
import { expectSqlError, Harness, startHarness, value } from './harness';

let h: Harness;
let app: Client;

beforeAll(async () => {
  h = await startHarness();
  await h.sql.query('CREATE ROLE app LOGIN');
  app = await h.pg.connect('app');
}, 120_000);

afterAll(async () => {
  await app?.end();
  await h?.close();
});

const controlCalls = [
  'SELECT pgraft_init()',
  "SELECT pgraft_add_node(4, '192.168.1.14', 7004)",
  'SELECT pgraft_remove_node(4)',
  'SELECT pgraft_transfer_leadership()',
  "SELECT pgraft_log_append('x')",
  'SELECT pgraft_log_get_entry(1)',
  "SELECT pgraft_kv_put('k', 'v')",
  "SELECT pgraft_kv_get('k')",
  "SELECT pgraft_kv_delete('k')",
  'SELECT * FROM pgraft_kv_list_keys()',
  'SELECT * FROM pgraft_kv_get_stats()',
  'SELECT * FROM pgraft_log_get_replication_status()',
];

test.each(controlCalls)('a plain role is denied: %s', async (statement) => {
  await expectSqlError(app.query(statement), { code: '42501', message: /permission denied for function pgraft_/ });
});

test('a plain role cannot reach the request table or the internal functions', async () => {
  await expectSqlError(app.query("INSERT INTO pgraft.request (op, args, requested_by, deadline) VALUES ('init', '{}', 'app', now() + '1 min')"), {
    code: '42501', message: /permission denied for schema pgraft/,
  });
  await expectSqlError(app.query("SELECT pgraft._rpc('init', '{}')"), { code: '42501' });
  await expectSqlError(app.query("CALL pgraft._call('init', '{}', 'app', 1000)"), { code: '42501' });
});

test('granting pgraft_admin gives the rights', async () => {
  await h.sql.query('CREATE ROLE operator LOGIN');
  await h.sql.query('GRANT pgraft_admin TO operator');
  const operator = await h.pg.connect('operator');
  try {
    expect(await value(operator, "SELECT pgraft_kv_put('granted', 'yes')")).toBe(true);
    expect(h.fake.calls.at(-1)).toEqual({ op: 'kvPut', args: ['granted', 'yes'] });
    expect((await h.sql.query("SELECT requested_by FROM pgraft.request")).rows).toEqual([]); // answered rows are gone
  } finally {
    await operator.end();
  }
});

test("a plain role's hand-made NOTIFYs on the agent's channel cause nothing", async () => {
  // A request is written (by an admin) and its id is known; later ids are guessable too.
  await h.sql.query("SELECT pgraft_kv_put('seed', 'x')");
  const calls = h.fake.calls.length;
  const lastId = Number(await value(h.sql, "SELECT last_value FROM pgraft.request_id_seq"));
  for (const payload of ['', String(lastId), String(lastId + 1), '{"op":"init"}', "init'; DROP TABLE x; --", 'x'.repeat(7000)]) {
    await app.query('SELECT pg_notify($1, $2)', ['pgraft_rpc', payload]);
  }
  await app.query('NOTIFY pgraft_rpc');
  await app.query(`NOTIFY pgraft_rpc, '${lastId + 2}'`);
  // The agent handles wake-ups in order: once a later admin request is answered, it has
  // seen all of the above.
  await h.sql.query("SELECT pgraft_kv_put('probe', 'x')");
  expect(h.fake.calls.slice(calls)).toEqual([{ op: 'kvPut', args: ['probe', 'x'] }]);
});

test('status functions stay open to every role', async () => {
  expect(await value(app, 'SELECT pgraft_get_worker_state()')).toBe('RUNNING');
  expect(await value(app, 'SELECT pgraft_get_version()')).toBe('1.2');
});

describe('argument checks', () => {
  const cases: Array<[string, string, RegExp, RegExp?]> = [
    ["SELECT pgraft_add_node(0, '10.0.1.14', 7004)", '22023', /node_id must be a positive integer, not 0/, /1 and up/],
    ["SELECT pgraft_add_node(-3, '10.0.1.14', 7004)", '22023', /node_id must be a positive integer/],
    ["SELECT pgraft_add_node(NULL, '10.0.1.14', 7004)", '22004', /node_id must not be NULL/, /pgraft_add_node\(4/],
    ["SELECT pgraft_add_node(4, '10.0.1.14', 0)", '22023', /port must be between 1 and 65535, not 0/, /pgraft.port/],
    ["SELECT pgraft_add_node(4, '10.0.1.14', 65536)", '22023', /port must be between 1 and 65535, not 65536/],
    ["SELECT pgraft_add_node(4, '10.0.1.14', NULL)", '22004', /port must not be NULL/],
    ["SELECT pgraft_add_node(4, '', 7004)", '22023', /address must not be empty/],
    ["SELECT pgraft_add_node(4, '   ', 7004)", '22023', /address must not be empty/],
    ["SELECT pgraft_add_node(4, NULL, 7004)", '22004', /address must not be NULL/],
    ["SELECT pgraft_add_node(4, '10.0.1.14:7004', 7004)", '22023', /address '10.0.1.14:7004' is not a host name or IP address/, /without port/],
    ["SELECT pgraft_add_node(4, 'node 4', 7004)", '22023', /is not a host name or IP address/],
    ["SELECT pgraft_add_node(4, 'x''); DROP TABLE t; --', 7004)", '22023', /is not a host name or IP address/],
    ["SELECT pgraft_add_node(4, 'tcp://node4', 7004)", '22023', /is not a host name or IP address/],
    ['SELECT pgraft_remove_node(0)', '22023', /node_id must be a positive integer/],
    ['SELECT pgraft_remove_node(NULL)', '22004', /node_id must not be NULL/],
    ['SELECT pgraft_transfer_leadership(0)', '22023', /node_id must be a positive integer/],
    ["SELECT pgraft_kv_put('', 'v')", '22023', /key must not be empty/],
    ["SELECT pgraft_kv_put(NULL, 'v')", '22004', /key must not be NULL/],
    ["SELECT pgraft_kv_put('k', NULL)", '22004', /value must not be NULL/, /pgraft_kv_delete/],
    ["SELECT pgraft_kv_put(repeat('k', 1025), 'v')", '54000', /key is 1025 bytes long, more than the limit of 1024 bytes/],
    ["SELECT pgraft_kv_put('k', repeat('v', 1048577))", '54000', /value is 1048577 bytes long/],
    ["SELECT pgraft_kv_delete('')", '22023', /key must not be empty/],
    ['SELECT pgraft_log_append(NULL)', '22004', /data must not be NULL/],
    ['SELECT pgraft_log_get_entry(0)', '22023', /index must be 1 or more, not 0/],
  ];

  // One argument: jest takes a test function with more parameters than the row for a callback test.
  test.each(cases.map((c) => ({ statement: c[0], code: c[1], message: c[2], hint: c[3] })))(
    '$statement -> $code', async ({ statement, code, message, hint }) => {
    const calls = h.fake.calls.length;
    await expectSqlError(h.sql.query(statement), { code, message, hint });
    expect(h.fake.calls.length).toBe(calls); // refused before the agent is asked
    },
  );

  test('valid addresses pass', async () => {
    for (const address of ['10.0.1.14', 'node4.example.com', 'node-4', '::1', 'fe80::1%eth0', '[2001:db8::4]']) {
      expect(await value(h.sql, 'SELECT pgraft_add_node(40, $1, 7004)', [address])).toBe(true);
      expect(await value(h.sql, 'SELECT pgraft_remove_node(40)')).toBe(true);
    }
  });

  test('NULL reads give NULL, as PostgreSQL functions do', async () => {
    expect(await value(h.sql, 'SELECT pgraft_kv_get(NULL)')).toBeNull();
    expect(await value(h.sql, 'SELECT pgraft_log_get_entry(NULL)')).toBeNull();
  });
});

test('keys and values travel verbatim: nothing in them is SQL', async () => {
  await h.sql.query('CREATE TABLE canary (x int)');
  const tricky = [
    "'); DROP TABLE canary; --",
    "$$; DROP TABLE canary; $$",
    "\\'; DROP TABLE canary; --",
    "%L %s %I ' \" \\ ",
    '\u00e9\u00e8 \u{1F600} \t\n\r end',
    "E'\\x00'",
  ];
  for (const s of tricky) {
    expect(await value(h.sql, 'SELECT pgraft_kv_put($1, $2)', [s, s + s])).toBe(true);
    expect(h.fake.kv.get(s)).toBe(s + s);
    expect(await value(h.sql, 'SELECT pgraft_kv_get($1)', [s])).toBe(s + s);
    expect(await value(h.sql, 'SELECT pgraft_log_get_entry(pgraft_log_append($1))->>\'data\'', [s])).toBe(s);
  }
  expect(await value(h.sql, "SELECT count(*) FROM pg_tables WHERE tablename = 'canary'")).toBe('1');
});
