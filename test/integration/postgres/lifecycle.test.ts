/**
 * The extension's life: installed by the agent on start, 1.0 upgraded to the current
 * version (by hand and by the agent), and the bridge carrying on across PostgreSQL
 * restarts, including requests sent while its listener was away.
 */
import { PostgresBridge } from '../../../agent/postgres/bridge';
import { FakeControlPlane } from '../../support/fake_control_plane';
import { TestPostgres } from '../../support/postgres';
import { expectSqlError, installExtension, PUBLISH_MS, value, waitFor } from './harness';

let pg: TestPostgres;

beforeAll(async () => {
  pg = await TestPostgres.start();
  await installExtension(pg);
}, 120_000);

afterAll(async () => {
  await pg?.stop();
});

function bridgeFor(database: string, fake = new FakeControlPlane()) {
  return new PostgresBridge({
    conninfo: pg.conninfo('postgres', database),
    control: fake,
    status: () => fake.status(),
    publishIntervalMs: PUBLISH_MS,
  });
}

/** A superuser session in a fresh database. */
async function freshDatabase(name: string) {
  const admin = await pg.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return pg.connect('postgres', name);
}

const NEW_IN_1_1 = ['pgraft_kv_get_stats', 'pgraft_log_get_replication_status'];
const CURRENT = '1.2';

async function functionsOf(sql: Awaited<ReturnType<typeof pg.connect>>, names: string[]) {
  const { rows } = await sql.query('SELECT proname FROM pg_proc WHERE proname = ANY($1) ORDER BY 1', [names]);
  return rows.map((r) => r.proname);
}

test('CREATE EXTENSION pgraft VERSION 1.0, then ALTER EXTENSION pgraft UPDATE to the current version', async () => {
  const sql = await freshDatabase('upgrade_by_hand');
  try {
    await sql.query("CREATE EXTENSION pgraft VERSION '1.0'");
    expect(await value(sql, 'SELECT pgraft_get_version()')).toBe('1.0');
    expect(await functionsOf(sql, NEW_IN_1_1)).toEqual([]);
    expect(await value(sql, "SELECT default_version FROM pg_available_extensions WHERE name = 'pgraft'")).toBe(CURRENT);

    await sql.query('ALTER EXTENSION pgraft UPDATE');
    expect(await value(sql, 'SELECT pgraft_get_version()')).toBe(CURRENT);
    expect(await functionsOf(sql, NEW_IN_1_1)).toEqual(NEW_IN_1_1);
    // The new functions are as closed as the old ones.
    const { rows } = await sql.query(
      `SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_may,
              has_function_privilege('pgraft_admin', p.oid, 'EXECUTE') AS admin_may
       FROM pg_proc p WHERE proname = ANY($1) ORDER BY 1`,
      [NEW_IN_1_1],
    );
    expect(rows).toEqual(NEW_IN_1_1.map((proname) => ({ proname, public_may: false, admin_may: true })));

    // An upgraded install is the same as a fresh one.
    const fresh = await freshDatabase('fresh_install');
    try {
      await fresh.query('CREATE EXTENSION pgraft');
      const objects = `SELECT pg_describe_object(classid, objid, 0) AS o FROM pg_depend
                       WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
                         AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pgraft') ORDER BY 1`;
      expect((await sql.query(objects)).rows).toEqual((await fresh.query(objects)).rows);
    } finally {
      await fresh.end();
    }
  } finally {
    await sql.end();
  }
});

test('the agent installs the extension on start, or upgrades an old one', async () => {
  const sql = await freshDatabase('agent_installs');
  const bridge = bridgeFor('agent_installs');
  try {
    expect(await value(sql, "SELECT count(*) FROM pg_extension WHERE extname = 'pgraft'")).toBe('0');
    await bridge.start();
    expect(await value(sql, 'SELECT pgraft_get_version()')).toBe(CURRENT);
    await bridge.stop();

    await sql.query('DROP EXTENSION pgraft');
    await sql.query("CREATE EXTENSION pgraft VERSION '1.0'");
    const upgrading = bridgeFor('agent_installs');
    await upgrading.start();
    try {
      expect(await value(sql, 'SELECT pgraft_get_version()')).toBe(CURRENT);
      expect((await sql.query('SELECT * FROM pgraft_kv_get_stats()')).rows).toHaveLength(1);
    } finally {
      await upgrading.stop();
    }
  } finally {
    await bridge.stop();
    await sql.end();
  }
});

test('the agent answers in one call from 1.2 on, and still answers an extension that predates it', async () => {
  for (const [version, oneCall] of [['1.2', true], ['1.1', false]] as const) {
    const database = `answers_${version.replace('.', '_')}`;
    const sql = await freshDatabase(database);
    // Sessions opened from now on count their function calls: the agent's will.
    await sql.query(`ALTER DATABASE ${database} SET track_functions = 'all'`);
    await sql.query(`CREATE EXTENSION pgraft VERSION '${version}'`);
    const fake = new FakeControlPlane();
    const bridge = new PostgresBridge({
      conninfo: pg.conninfo('postgres', database),
      control: fake,
      status: () => fake.status(),
      publishIntervalMs: PUBLISH_MS,
      installExtension: false,
    });
    try {
      await bridge.start();
      expect(await value(sql, "SELECT pgraft_kv_put('k', 'v')")).toBe(true);
      expect(await value(sql, "SELECT pgraft_kv_put('k', 'w')")).toBe(true);
      expect(fake.kv.get('k')).toBe('w');
      expect(await value(sql, 'SELECT count(*) FROM pgraft.request')).toBe('0');
      const calls = async (name: string) =>
        Number(await value(sql, `SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions WHERE schemaname = 'pgraft' AND funcname = $1`, [name]));
      await bridge.stop(); // its sessions end, and report their counts
      await waitFor(`the agent's calls to be counted (extension ${version})`, async () => (await calls('_claim_pending')) >= 2, 20_000);
      expect({ version, answer: await calls('_answer'), reply: await calls('_reply') }).toEqual({
        version,
        answer: oneCall ? 2 : 0,
        reply: 2, // pgraft._answer calls it too
      });
    } finally {
      await bridge.stop();
      await sql.end();
    }
  }
}, 60_000);

test('a non-superuser conninfo is refused with the reason', async () => {
  const admin = await pg.connect();
  await admin.query('CREATE ROLE weak LOGIN');
  await admin.end();
  const fake = new FakeControlPlane();
  const bridge = new PostgresBridge({ conninfo: pg.conninfo('weak'), control: fake, status: () => fake.status() });
  await expect(bridge.start()).rejects.toThrow(/must be a superuser/);
});

describe('across PostgreSQL restarts', () => {
  const fake = new FakeControlPlane();
  let bridge: PostgresBridge;

  beforeAll(async () => {
    bridge = bridgeFor('postgres', fake);
    await bridge.start();
  });

  afterAll(async () => {
    await bridge?.stop();
  });

  /** A new session's first kv_put, retried while the server is still starting up. */
  async function putAfterRestart(key: string): Promise<void> {
    await waitFor(`pgraft_kv_put('${key}') to work again`, async () => {
      let sql;
      try {
        sql = await pg.connect();
        return (await value(sql, 'SELECT pgraft_kv_put($1, $2)', [key, 'x'])) === true;
      } catch (err) {
        if ((err as { code?: string }).code === '57P03') return false; // the database system is starting up
        throw err;
      } finally {
        await sql?.end().catch(() => undefined);
      }
    }, 10_000);
    expect(fake.kv.get(key)).toBe('x');
  }

  test.each(['fast', 'immediate'] as const)('restart -m %s: the bridge reconnects and requests work again', async (mode) => {
    await putAfterRestart(`before-${mode}`);
    await pg.restart(mode);
    await putAfterRestart(`after-${mode}`);
    const sql = await pg.connect();
    try {
      expect(await value(sql, 'SELECT pgraft_get_worker_state()')).toBe('RUNNING');
    } finally {
      await sql.end();
    }
  }, 60_000);

  test('a request sent while the listener is away is answered when it is back', async () => {
    const sql = await pg.connect();
    try {
      await sql.query("SELECT pgraft_kv_put('warm', 'x')"); // the loopback is open
      // Cut the listener and send at once, before it has reconnected and LISTENs again.
      const [, put] = await Promise.all([
        sql.query(
          "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name = 'pgraft agent listener'",
        ),
        (async () => {
          const other = await pg.connect();
          try {
            return await value(other, "SELECT pgraft_kv_put('while-away', 'x')");
          } finally {
            await other.end();
          }
        })(),
      ]);
      expect(put).toBe(true);
      expect(fake.kv.get('while-away')).toBe('x');
      await waitFor('the listener to be back', async () =>
        (await value(sql, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgraft agent listener'")) === '1');
    } finally {
      await sql.end();
    }
  });

  test('stop() with a request in progress returns promptly and the caller gets an ERROR', async () => {
    const sql = await pg.connect();
    try {
      await sql.query("SET pgraft.rpc_timeout = '2s'");
      fake.hold();
      const pending = sql.query("SELECT pgraft_kv_put('during-stop', 'x')");
      await waitFor('the request to reach the agent', () => fake.calls.at(-1)?.args[0] === 'during-stop');
      const t = Date.now();
      await bridge.stop();
      expect(Date.now() - t).toBeLessThan(3000);
      await expectSqlError(pending, { code: '58000', message: /did not finish the request within 2000 ms/ });
      expect(await value(sql, 'SELECT pgraft_get_worker_state()')).toBe('STOPPED');
    } finally {
      fake.unhold();
      await sql.end();
    }
  });
});
