/**
 * What SQL shows when parts of a real cluster fail: an agent killed with SIGKILL (its
 * PostgreSQL reports it STOPPED within 2 s; a killed leader is replaced), PostgreSQL
 * restarted under a running agent (fast and immediate), and the agents of a majority
 * stopped (no leader; writes fail with a clear ERROR within pgraft.rpc_timeout instead of
 * hanging). Each test starts from the whole three-node cluster with a leader.
 */
import { SystemNode, TestSystem, before, cleanupSystems, eventually, settledBy } from '../../support/system';
import { expectSqlError } from '../postgres/harness';

const RPC_TIMEOUT_MS = 2000;
/** How long past pgraft.rpc_timeout a failing control function may take to return. */
const RETURN_MARGIN_MS = 2000;
/** The default pgraft.status_timeout (1500ms) and a state file written every 250 ms: STOPPED within this. */
const STOPPED_WITHIN_MS = 2000;

let sys: TestSystem;

beforeAll(async () => {
  sys = await TestSystem.create({ size: 3, rpcTimeoutMs: RPC_TIMEOUT_MS });
  sys.startFounders();
  await sys.waitLeader();
}, 120_000);

afterAll(cleanupSystems, 60_000);

beforeEach(async () => {
  sys.restartStoppedFounders();
  await sys.waitLeader();
}, 30_000);

function others(node: SystemNode): SystemNode[] {
  return sys.founders().filter((n) => n !== node);
}

describe('PostgreSQL restarted under a running agent', () => {
  test.each(['fast', 'immediate'] as const)('pg_ctl restart -m %s: the agent reconnects and the functions work again', async (mode) => {
    const leader = await sys.waitLeader();
    const agentPid = leader.agent.p.pid;
    const key = `restart/${mode}`;
    expect(await leader.value('SELECT pgraft_kv_put($1, $2)', [key, 'before'])).toBe(true);

    await leader.restartPostgres(mode);

    expect((await leader.query('SELECT node_id, leader_id, state, worker_state FROM pgraft_get_cluster_status()')).rows).toEqual([
      { node_id: leader.id, leader_id: String(leader.id), state: 'leader', worker_state: 'RUNNING' },
    ]);
    // The first control call after the restart is answered: the agent's listener
    // reconnects and claims the request, whether it came before or after.
    expect(await leader.value('SELECT pgraft_kv_put($1, $2)', [key, 'after'])).toBe(true);
    for (const n of others(leader)) expect(await n.value('SELECT pgraft_kv_get($1)', [key])).toBe('after');
    expect(await leader.value('SELECT pgraft_kv_get($1)', [key])).toBe('after');
    // The same agent process carried on.
    expect(leader.agentRunning).toBe(true);
    expect(leader.agent.p.pid).toBe(agentPid);
    expect(leader.agent.p.find((l) => l.level >= 50)).toEqual([]);
  });
});

describe('an agent killed with SIGKILL', () => {
  test.each(['leader', 'follower'] as const)(
    "the %s's PostgreSQL reports the agent STOPPED within 2 s; the other two have a leader; the agent rejoins on restart",
    async (which) => {
      const leader = await sys.waitLeader();
      const victim = which === 'leader' ? leader : others(leader)[0];
      const survivors = others(victim);
      const termBefore = Number(await survivors[0].value('SELECT pgraft_get_term()'));

      const killedAt = Date.now();
      victim.agent.p.signal('SIGKILL');
      await before(`node ${victim.id}'s PostgreSQL to report its agent STOPPED`, killedAt + STOPPED_WITHIN_MS, async () => {
        return (await victim.value('SELECT pgraft_get_worker_state()')) === 'STOPPED';
      });
      expect((await victim.query('SELECT pgraft_get_leader() AS leader, pgraft_is_leader() AS is_leader, state FROM pgraft_get_cluster_status()')).rows).toEqual([
        { leader: '0', is_leader: false, state: 'stopped' },
      ]);
      // A control function there fails at once instead of waiting for an answer.
      await expectSqlError(settledBy('pgraft_kv_put beside a dead agent', Date.now() + 1000, victim.query("SELECT pgraft_kv_put('dead/agent', 'x')")), {
        code: '58000',
        message: /^the pgraft agent is not running on this server \(STOPPED\)$/,
        hint: /Start the agent/,
      });
      expect(await victim.agent.p.waitExit()).toEqual({ code: null, signal: 'SIGKILL' });

      const next = await sys.waitLeader(survivors);
      for (const n of survivors) expect(await n.value('SELECT pgraft_get_leader() > 0')).toBe(true);
      if (which === 'leader') {
        expect(next.id).not.toBe(victim.id);
        expect(Number(await next.value('SELECT pgraft_get_term()'))).toBeGreaterThan(termBefore);
      } else {
        expect(next).toBe(leader);
      }
      expect(await survivors[1].value('SELECT pgraft_kv_put($1, $2)', [`killed/${which}`, 'two of three'])).toBe(true);

      // Restarted with its data directory, the agent rejoins and serves SQL again.
      victim.startAgent();
      const after = await sys.waitLeader(); // agreed on by all three, the restarted one included
      expect(await victim.value('SELECT pgraft_get_leader()')).toBe(String(after.id));
      expect(await victim.value('SELECT pgraft_kv_get($1)', [`killed/${which}`])).toBe('two of three');
    },
    60_000,
  );
});

describe('the agents of a majority stopped', () => {
  test('the remaining node shows no leader; writes and reads fail with a clear ERROR within pgraft.rpc_timeout', async () => {
    const leader = await sys.waitLeader();
    // The leader remains: it must notice that it lost its quorum and step down.
    for (const n of others(leader)) {
      expect(await n.agent.stop()).toEqual({ code: 0, signal: null });
      // A clean stop says so at once.
      expect(await n.value('SELECT pgraft_get_worker_state()')).toBe('STOPPED');
    }

    await eventually(async () => {
      expect((await leader.query('SELECT pgraft_get_leader() AS leader, pgraft_is_leader() AS is_leader, pgraft_get_worker_state() AS worker')).rows).toEqual([
        { leader: '0', is_leader: false, worker: 'RUNNING' },
      ]);
    }, 10_000);

    const noQuorum = {
      code: '58000',
      // The agent answers just before the SQL caller's deadline, with its own reason.
      message: /^no leader (was elected|confirmed the read) within \d+ ms/,
    };
    let deadline = Date.now() + RPC_TIMEOUT_MS + RETURN_MARGIN_MS;
    await expectSqlError(settledBy('pgraft_kv_put without a quorum', deadline, leader.query("SELECT pgraft_kv_put('no-quorum/key', 'v')")), noQuorum);
    deadline = Date.now() + RPC_TIMEOUT_MS + RETURN_MARGIN_MS;
    await expectSqlError(settledBy('pgraft_kv_get without a quorum', deadline, leader.query("SELECT pgraft_kv_get('no-quorum/key')")), noQuorum);
    // A membership change needs a leader and says so at once.
    await expectSqlError(settledBy('pgraft_remove_node without a leader', Date.now() + 1000, leader.query('SELECT pgraft_remove_node(3)')), {
      code: '55000',
      message: /^no Raft leader is known/,
      hint: /majority of the nodes is up/,
    });

    // With the majority back, a leader is elected and writes go through again.
    sys.restartStoppedFounders();
    const next = await sys.waitLeader();
    expect(await next.value("SELECT pgraft_kv_put('no-quorum/after', 'v')")).toBe(true);
    expect(await leader.value("SELECT pgraft_kv_get('no-quorum/after')")).toBe('v');
  }, 60_000);
});
