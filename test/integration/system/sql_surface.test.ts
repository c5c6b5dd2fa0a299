/**
 * The SQL surface end to end: three PostgreSQL servers, each with its agent, the agents in
 * one Raft cluster. Every pgraft statement of the operator documents runs as written on
 * real servers and gives values that fit the cluster; membership changes, key-value
 * writes through a follower (in transactions too) and the authority checks work against
 * the real agents.
 *
 * The documents' node addresses (192.168.1.1x, port 700x) are the only thing changed in
 * their statements: the test's nodes listen on 127.0.0.1 and free ports.
 */
import type { Client } from 'pg';
import { DOCUMENTS, documentStatements, documentsPresent } from '../../support/documents';
import { SystemNode, TestSystem, cleanupSystems, eventually } from '../../support/system';
import { expectSqlError } from '../postgres/harness';

let sys: TestSystem;

beforeAll(async () => {
  sys = await TestSystem.create({ size: 3, spare: 1 });
  sys.startFounders();
  await sys.waitLeader();
}, 120_000);

afterAll(cleanupSystems, 60_000);

/** Where the documents' statements run: a cluster and the ids of its members. */
interface Scene {
  sys: TestSystem;
  members: number[];
}

function membersOf(scene: Scene): SystemNode[] {
  return scene.members.map((id) => scene.sys.node(id));
}

/** The statement's rows on every member, with the member. */
async function onEvery(scene: Scene, statement: string): Promise<Array<{ node: SystemNode; rows: any[] }>> {
  return Promise.all(membersOf(scene).map(async (node) => ({ node, rows: (await node.query(statement)).rows })));
}

/** On every member: the statement's only value. */
async function valuesOnEvery(scene: Scene, statement: string): Promise<Map<number, unknown>> {
  const out = new Map<number, unknown>();
  for (const { node, rows } of await onEvery(scene, statement)) {
    expect({ node: node.id, rows: rows.length }).toEqual({ node: node.id, rows: 1 });
    out.set(node.id, Object.values(rows[0])[0]);
  }
  return out;
}

/** The same value on every member. */
async function expectEverywhere(scene: Scene, statement: string, want: unknown): Promise<void> {
  const got = await valuesOnEvery(scene, statement);
  expect(Object.fromEntries(got)).toEqual(Object.fromEntries(scene.members.map((id) => [id, want])));
}

/** A node added by the documents' statements: 127.0.0.1 and the node's own Raft port. */
function withTestAddress(statement: string, node: SystemNode): string {
  return statement.replace(/pgraft_add_node\((\d+), '[^']*', \d+\)/, `pgraft_add_node($1, '127.0.0.1', ${node.raftPort})`);
}

const recent = (t: Date) => Math.abs(Date.now() - t.getTime()) < 5000;

/** What each statement of the documents must show, in the scene it runs in. */
type Step = (scene: Scene, statement: string, match: RegExpMatchArray) => Promise<void>;

const STEPS: Array<[RegExp, Step]> = [
  // Disaster recovery (000): a node restored from backup with no extension and no cluster.
  [
    /^CREATE EXTENSION pgraft$/,
    async (scene, statement) => {
      scene.sys = await TestSystem.create({ size: 0, spare: 3 });
      scene.members = [];
      const restored = scene.sys.node(1);
      expect(await restored.value("SELECT count(*) FROM pg_extension WHERE extname = 'pgraft'")).toBe('0');
      await restored.query(statement);
      expect(await restored.value('SELECT pgraft_get_version()')).toBe('1.2');
      // No agent yet: the status functions say so.
      expect(await restored.value('SELECT pgraft_get_worker_state()')).toBe('STOPPED');
      restored.startAgent();
      await eventually(async () => {
        expect(await restored.query('SELECT pgraft_get_worker_state() AS worker, pgraft_get_leader() AS leader')).toMatchObject({
          rows: [{ worker: 'RUNNING', leader: '0' }],
        });
      }, 15_000);
    },
  ],
  [
    /^SELECT pgraft_init\(\)$/,
    async (scene, statement) => {
      const restored = scene.sys.node(1);
      expect(await restored.value(statement)).toBe(true);
      scene.members = [1];
      await eventually(async () => {
        expect((await restored.query('SELECT * FROM pgraft_get_nodes()')).rows).toMatchObject([{ node_id: 1, role: 'voter', is_leader: true }]);
        expect(await restored.value('SELECT pgraft_is_leader()')).toBe(true);
      });
    },
  ],
  // 000: "Always add nodes on the leader"; the new node runs, with an empty raft data dir.
  [
    /^SELECT pgraft_add_node\((\d+), '[^']+', \d+\)$/,
    async (scene, statement, m) => {
      const node = scene.sys.node(Number(m[1]));
      expect(scene.members).not.toContain(node.id);
      if (!node.agentRunning) node.startAgent();
      await eventually(async () => expect(await node.value('SELECT pgraft_get_worker_state()')).toBe('RUNNING'), 15_000);
      const leader = await scene.sys.waitLeader(membersOf(scene));
      expect(await leader.value(withTestAddress(statement, node))).toBe(true);
      scene.members.push(node.id);
      const voters = [...scene.members].sort((a, b) => a - b);
      // The new node's own PostgreSQL lists every member as a voter, and knows the leader.
      for (const n of [leader, node]) {
        await eventually(async () => {
          const { rows } = await n.query('SELECT * FROM pgraft_get_nodes()');
          expect(rows.map((r) => [r.node_id, r.address, r.port, r.role, r.is_leader])).toEqual(
            voters.map((id) => [id, '127.0.0.1', scene.sys.node(id).raftPort, 'voter', id === leader.id]),
          );
          expect(await n.value('SELECT pgraft_get_leader()')).toBe(String(leader.id));
        });
      }
    },
  ],
  [
    /^SELECT pgraft_remove_node\((\d+)\)$/,
    async (scene, statement, m) => {
      const id = Number(m[1]);
      expect(scene.members).toContain(id);
      scene.members = scene.members.filter((x) => x !== id);
      const leader = await scene.sys.waitLeader(membersOf(scene));
      expect(await leader.value(statement)).toBe(true);
      await eventually(async () => {
        for (const { node, rows } of await onEvery(scene, 'SELECT node_id FROM pgraft_get_nodes()')) {
          expect({ node: node.id, members: rows.map((r) => r.node_id) }).toEqual({ node: node.id, members: scene.members });
        }
      });
      // "Shutdown removed node's PostgreSQL": its agent first, which exits cleanly.
      const removed = scene.sys.node(id);
      expect(await removed.agent.stop()).toEqual({ code: 0, signal: null });
      await removed.endSessions();
      await removed.pg.stop();
    },
  ],
  [
    /^SELECT pgraft_is_leader\(\)$/,
    async (scene, statement) => {
      const leader = await scene.sys.waitLeader(membersOf(scene));
      await expectEverywhere(scene, statement, expect.any(Boolean));
      const got = await valuesOnEvery(scene, statement);
      expect([...got].filter(([, v]) => v === true).map(([id]) => id)).toEqual([leader.id]);
    },
  ],
  [
    /^SELECT pgraft_get_leader\(\)$/,
    async (scene, statement) => {
      const leader = await scene.sys.waitLeader(membersOf(scene));
      await expectEverywhere(scene, statement, String(leader.id));
    },
  ],
  [/^SELECT pgraft_get_leader\(\) > 0$/, (scene, statement) => expectEverywhere(scene, statement, true)],
  [/^SELECT pgraft_get_worker_state\(\) = 'RUNNING'$/, (scene, statement) => expectEverywhere(scene, statement, true)],
  [/^SELECT pgraft_get_worker_state\(\)$/, (scene, statement) => expectEverywhere(scene, statement, 'RUNNING')],
  [
    /^SELECT pgraft_get_term\(\)$/,
    async (scene, statement) => {
      await scene.sys.waitLeader(membersOf(scene));
      await eventually(async () => {
        const terms = new Set((await valuesOnEvery(scene, statement)).values());
        expect(terms.size).toBe(1);
        expect(Number([...terms][0])).toBeGreaterThan(0);
      });
    },
  ],
  // 002: the quick health check.
  [
    /^SELECT\s+pgraft_is_leader\(\) as is_leader,\s+pgraft_get_term\(\) as term,\s+pgraft_get_leader\(\) as leader_id,\s+pgraft_get_worker_state\(\) as worker$/,
    async (scene, statement) => {
      const leader = await scene.sys.waitLeader(membersOf(scene));
      await eventually(async () => {
        const views = await onEvery(scene, statement);
        const term = views[0].rows[0]?.term;
        expect(Number(term)).toBeGreaterThan(0);
        for (const { node, rows } of views) {
          expect({ node: node.id, rows }).toEqual({
            node: node.id,
            rows: [{ is_leader: node === leader, term, leader_id: String(leader.id), worker: 'RUNNING' }],
          });
        }
      });
    },
  ],
  [
    /^SELECT \* FROM pgraft_get_cluster_status\(\)$/,
    async (scene, statement) => {
      const leader = await scene.sys.waitLeader(membersOf(scene));
      await eventually(async () => {
        const views = await onEvery(scene, statement);
        const term = views[0].rows[0]?.current_term;
        for (const { node, rows } of views) {
          expect({ node: node.id, rows }).toEqual({
            node: node.id,
            rows: [
              {
                node_id: node.id,
                current_term: term,
                leader_id: String(leader.id),
                state: node === leader ? 'leader' : 'follower',
                num_nodes: scene.members.length,
                messages_processed: expect.stringMatching(/^[1-9]\d*$/),
                heartbeats_sent: node === leader ? expect.stringMatching(/^[1-9]\d*$/) : expect.stringMatching(/^\d+$/),
                elections_triggered: expect.stringMatching(/^\d+$/),
                worker_state: 'RUNNING',
                status_updated_at: expect.any(Date),
              },
            ],
          });
          expect(recent(rows[0].status_updated_at)).toBe(true);
        }
      });
    },
  ],
  [
    /^SELECT \* FROM pgraft_get_nodes\(\)$/,
    async (scene, statement) => {
      const leader = await scene.sys.waitLeader(membersOf(scene));
      await eventually(async () => {
        for (const { node, rows } of await onEvery(scene, statement)) {
          expect({ node: node.id, rows: rows.map((r) => [r.node_id, r.address, r.port, r.role, r.is_leader]) }).toEqual({
            node: node.id,
            rows: scene.members.map((id) => [id, '127.0.0.1', scene.sys.node(id).raftPort, 'voter', id === leader.id]),
          });
        }
        // The leader knows how far each follower has come and when it last heard of it.
        const { rows } = await leader.query(statement);
        for (const r of rows.filter((x) => x.node_id !== leader.id)) {
          expect(Number(r.match_index)).toBeGreaterThan(0);
          expect(Number(r.lag)).toBeGreaterThanOrEqual(0);
          expect(recent(r.last_contact)).toBe(true);
        }
      });
    },
  ],
  [
    /^SELECT \* FROM pgraft_log_get_stats\(\)$/,
    async (scene, statement) => {
      for (const { node, rows } of await onEvery(scene, statement)) {
        expect({ node: node.id, rows: rows.length }).toEqual({ node: node.id, rows: 1 });
        const s = Object.fromEntries(Object.entries(rows[0]).map(([k, v]) => [k, Number(v)]));
        expect(s.commit_index).toBeGreaterThan(0);
        expect(s.last_applied).toBeLessThanOrEqual(s.commit_index);
        expect(s.commit_index).toBeLessThanOrEqual(s.last_index);
        expect(s.log_size).toBeGreaterThan(0);
        expect(s.log_size).toBeLessThanOrEqual(s.last_index);
        expect(s.replicated).toBeGreaterThan(0);
        expect(s.errors).toBe(0);
      }
    },
  ],
  // The same functions called in the select list: one composite value per row.
  [
    /^SELECT pgraft_get_cluster_status\(\)$/,
    async (scene, statement) => {
      const leader = await scene.sys.waitLeader(membersOf(scene));
      await eventually(async () => {
        for (const [id, v] of await valuesOnEvery(scene, statement)) {
          const state = id === leader.id ? 'leader' : 'follower';
          expect(v).toMatch(new RegExp(`^\\(${id},\\d+,${leader.id},${state},${scene.members.length},\\d+,\\d+,\\d+,RUNNING,"[^"]+"\\)$`));
        }
      });
    },
  ],
  [
    /^SELECT pgraft_get_nodes\(\)$/,
    async (scene, statement) => {
      const leader = await scene.sys.waitLeader(membersOf(scene));
      for (const { node, rows } of await onEvery(scene, statement)) {
        const got = rows.map((r) => String(Object.values(r)[0]).split(',').slice(0, 5).join(','));
        expect({ node: node.id, got }).toEqual({
          node: node.id,
          got: scene.members.map((id) => `(${id},127.0.0.1,${scene.sys.node(id).raftPort},${id === leader.id ? 't' : 'f'},voter`),
        });
      }
    },
  ],
  [
    /^SELECT pgraft_log_get_stats\(\)$/,
    async (scene, statement) => {
      for (const [id, v] of await valuesOnEvery(scene, statement)) {
        expect({ node: id, v }).toEqual({ node: id, v: expect.stringMatching(/^\([1-9]\d*,[1-9]\d*,[1-9]\d*,[1-9]\d*,\d+,\d+,\d+,0\)$/) });
      }
    },
  ],
];

const describeIfPresent = documentsPresent() ? describe : describe.skip;

describeIfPresent('the statements of the operator documents on a real cluster', () => {
  test.each(DOCUMENTS)(
    '%s: every statement runs as written and shows the cluster as it is',
    async (document) => {
      const scene: Scene = { sys, members: [1, 2, 3] };
      const statements = documentStatements(document);
      expect(statements.length).toBeGreaterThan(10);
      for (const statement of statements) {
        const step = STEPS.find(([pattern]) => pattern.test(statement));
        if (!step) throw new Error(`${document}: no expectation for "${statement}"`);
        try {
          await step[1](scene, statement, statement.match(step[0])!);
        } catch (err) {
          (err as Error).message = `${document}: "${statement}" on nodes ${scene.members.join(', ')}:\n${(err as Error).message}`;
          throw err;
        }
      }
    },
    120_000,
  );
});

describe('on the real cluster', () => {
  let leader: SystemNode;
  let followers: SystemNode[];

  beforeEach(async () => {
    leader = await sys.waitLeader();
    followers = sys.founders().filter((n) => n !== leader);
  });

  test("pgraft_add_node on a follower: ERROR 55000 whose HINT names the leader's Raft address; nothing changes", async () => {
    for (const f of followers) {
      await expectSqlError(f.query(`SELECT pgraft_add_node(4, '127.0.0.1', ${sys.node(4).raftPort})`), {
        code: '55000',
        message: new RegExp(`^this node is not the Raft leader; node ${leader.id} is$`),
        hint: new RegExp(`node ${leader.id}, whose Raft address is 127\\.0\\.0\\.1:${leader.raftPort}\\b`),
      });
    }
    for (const n of sys.founders()) {
      expect((await n.query('SELECT node_id FROM pgraft_get_nodes()')).rows.map((r) => r.node_id)).toEqual([1, 2, 3]);
    }
  });

  test('pgraft_kv_put and pgraft_kv_get on a follower: autocommit, BEGIN ... COMMIT, ROLLBACK, REPEATABLE READ, SERIALIZABLE', async () => {
    const [f, other] = followers;
    const everyone = sys.founders();
    expect(await f.value("SELECT pgraft_kv_put('sys/auto', 'one')")).toBe(true);
    // Committed through Raft: a linearizable read on every node sees it at once.
    for (const n of everyone) expect(await n.value("SELECT pgraft_kv_get('sys/auto')")).toBe('one');

    const s: Client = await f.connect();
    await s.query('BEGIN');
    expect((await s.query("SELECT pgraft_kv_put('sys/txn', 'two') AS ok")).rows).toEqual([{ ok: true }]);
    expect((await s.query("SELECT pgraft_kv_get('sys/txn') AS v")).rows).toEqual([{ v: 'two' }]);
    // Not part of the caller's transaction: the others see it before COMMIT.
    expect(await other.value("SELECT pgraft_kv_get('sys/txn')")).toBe('two');
    await s.query('COMMIT');

    await s.query('BEGIN');
    expect((await s.query("SELECT pgraft_kv_put('sys/rolled-back', 'three') AS ok")).rows).toEqual([{ ok: true }]);
    await s.query('ROLLBACK');
    expect(await leader.value("SELECT pgraft_kv_get('sys/rolled-back')")).toBe('three');

    for (const isolation of ['REPEATABLE READ', 'SERIALIZABLE']) {
      const key = `sys/${isolation.replace(' ', '-').toLowerCase()}`;
      await s.query(`BEGIN ISOLATION LEVEL ${isolation}`);
      await s.query('SELECT count(*) FROM pg_class'); // the transaction's snapshot is taken here
      expect((await s.query('SELECT pgraft_kv_put($1, $2) AS ok', [key, 'mine'])).rows).toEqual([{ ok: true }]);
      // Written elsewhere after that snapshot: the read is linearizable, not the snapshot's.
      expect(await other.value('SELECT pgraft_kv_put($1, $2)', [`${key}/other`, 'theirs'])).toBe(true);
      expect((await s.query('SELECT pgraft_kv_get($1) AS mine, pgraft_kv_get($2) AS theirs', [key, `${key}/other`])).rows).toEqual([
        { mine: 'mine', theirs: 'theirs' },
      ]);
      expect((await s.query('SELECT pgraft_kv_put($1, $2) AS ok', [key, 'again'])).rows).toEqual([{ ok: true }]);
      await s.query('COMMIT');
      expect(await leader.value('SELECT pgraft_kv_get($1)', [key])).toBe('again');
    }
    await s.end();

    const keys = (await leader.query('SELECT key FROM pgraft_kv_list_keys() ORDER BY 1')).rows.map((r) => r.key);
    expect(keys).toEqual(expect.arrayContaining(['sys/auto', 'sys/txn', 'sys/rolled-back', 'sys/repeatable-read', 'sys/serializable/other']));
  });

  test('the other control functions: log append and lookup, delete, key listing and figures, replication status, leadership transfer', async () => {
    const [f, other] = followers;
    const index = Number(await f.value("SELECT pgraft_log_append('deploy 42 finished')"));
    expect(index).toBeGreaterThan(0);
    const term = Number(await leader.value('SELECT pgraft_get_term()'));
    for (const n of [leader, other]) {
      expect(await n.value('SELECT pgraft_log_get_entry($1)', [index])).toEqual({ index, term, type: 'normal', data: 'deploy 42 finished' });
    }
    expect(await leader.value('SELECT pgraft_log_get_entry($1)', [index + 1_000_000])).toBeNull();

    expect(await f.value("SELECT pgraft_kv_put('ops/delete-me', 'x')")).toBe(true);
    expect(await other.value("SELECT pgraft_kv_delete('ops/delete-me')")).toBe(true);
    expect(await f.value("SELECT pgraft_kv_delete('ops/delete-me')")).toBe(false);
    expect(await leader.value("SELECT pgraft_kv_get('ops/delete-me')")).toBeNull();
    const keys = (await other.query('SELECT key FROM pgraft_kv_list_keys()')).rows.map((r) => r.key);
    expect(keys).not.toContain('ops/delete-me');
    const stats = (await other.query('SELECT * FROM pgraft_kv_get_stats()')).rows;
    expect(stats).toEqual([expect.objectContaining({ num_keys: String(keys.length), deletes: expect.stringMatching(/^[1-9]\d*$/) })]);
    expect(Number(stats[0].applied_index)).toBeGreaterThanOrEqual(index);

    const { rows } = await leader.query('SELECT node_id, address, port, role, match_index FROM pgraft_log_get_replication_status()');
    expect(rows.map((r) => [r.node_id, r.address, r.port, r.role])).toEqual(
      followers.map((n) => [n.id, '127.0.0.1', n.raftPort, 'voter']).sort((a, b) => (a[0] as number) - (b[0] as number)),
    );
    for (const r of rows) expect(Number(r.match_index)).toBeGreaterThanOrEqual(index);
    await expectSqlError(f.query('SELECT * FROM pgraft_log_get_replication_status()'), { code: '55000', hint: new RegExp(`node ${leader.id}`) });

    expect(await leader.value('SELECT pgraft_transfer_leadership($1)', [other.id])).toBe(true);
    expect(await sys.waitLeader()).toBe(other);
    expect(await other.value('SELECT pgraft_is_leader()')).toBe(true);
  });

  describe('authority', () => {
    let app: Client;
    let node: SystemNode;

    beforeAll(async () => {
      const current = await sys.waitLeader();
      node = sys.founders().find((n) => n !== current)!;
      await node.query('CREATE ROLE app LOGIN');
      app = await node.connect('app');
    });

    test('a plain role gets permission denied for the control functions and the request table, but reads status', async () => {
      await expectSqlError(app.query("SELECT pgraft_kv_put('app/denied', 'x')"), { code: '42501', message: /^permission denied for function pgraft_kv_put$/ });
      await expectSqlError(app.query('SELECT pgraft_remove_node(3)'), { code: '42501', message: /^permission denied for function pgraft_remove_node$/ });
      await expectSqlError(
        app.query(`INSERT INTO pgraft.request (op, args, requested_by, deadline) VALUES ('kvPut', '{"key": "app/denied", "value": "x"}', 'app', now() + '1 min')`),
        { code: '42501', message: /permission denied for schema pgraft/ },
      );
      expect((await app.query('SELECT pgraft_get_worker_state() AS w, pgraft_get_leader() AS l')).rows).toEqual([{ w: 'RUNNING', l: String(leader.id) }]);
      expect(await leader.value("SELECT pgraft_kv_get('app/denied')")).toBeNull();
    });

    test("a plain role's hand-made NOTIFYs on the agent's channel change nothing in the cluster", async () => {
      expect(await node.value("SELECT pgraft_kv_put('app/seed', 'x')")).toBe(true);
      const lastId = Number(await node.value('SELECT last_value FROM pgraft.request_id_seq'));
      const forged = [
        '',
        String(lastId),
        String(lastId + 1),
        JSON.stringify({ op: 'kvPut', args: { key: 'app/forged', value: 'x' } }),
        JSON.stringify({ id: lastId + 1, op: 'removeNode', args: { nodeId: leader.id } }),
        'kvPut app/forged x',
      ];
      for (const payload of forged) await app.query("SELECT pg_notify('pgraft_rpc', $1)", [payload]);
      await app.query('NOTIFY pgraft_rpc');
      // The agent takes wake-ups in order: once a later request is answered, it has seen them all.
      expect(await node.value("SELECT pgraft_kv_put('app/after', 'y')")).toBe(true);
      for (const n of sys.founders()) {
        expect(await n.value("SELECT pgraft_kv_get('app/forged')")).toBeNull();
        expect(await n.value("SELECT pgraft_kv_get('app/after')")).toBe('y');
      }
      expect((await leader.query("SELECT key FROM pgraft_kv_list_keys() WHERE key LIKE 'app/%' ORDER BY 1")).rows.map((r) => r.key)).toEqual([
        'app/after',
        'app/seed',
      ]);
      expect((await leader.query('SELECT node_id FROM pgraft_get_nodes()')).rows.map((r) => r.node_id)).toEqual([1, 2, 3]);
      expect(await sys.waitLeader()).toBe(leader);
    });

    test('a role granted pgraft_admin may write', async () => {
      await node.query('CREATE ROLE ops LOGIN');
      await node.query('GRANT pgraft_admin TO ops');
      const ops = await node.connect('ops');
      expect((await ops.query("SELECT pgraft_kv_put('ops/granted', 'yes') AS ok")).rows).toEqual([{ ok: true }]);
      await ops.end();
      expect(await leader.value("SELECT pgraft_kv_get('ops/granted')")).toBe('yes');
    });
  });
});
