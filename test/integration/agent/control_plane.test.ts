import { AgentControlPlane } from '../../../agent/control_plane';
import { ControlError, SqlState } from '../../../agent/postgres/control';
import { InProcessCluster, waitFor } from '../../support/in_process_cluster';

describe('the SQL control surface over real agents (AgentControlPlane)', () => {
  let c: InProcessCluster;
  beforeEach(() => {
    c = new InProcessCluster();
  });
  afterEach(() => c.close());

  test('key-value and log functions work on any node; entries read back', async () => {
    const as = await c.start(3);
    const leader = await c.leader();
    const follower = new AgentControlPlane(as.find((a) => a !== leader)!);
    expect(await follower.kvPut('k', "it's a value")).toBe(true);
    expect(await follower.kvGet('k')).toBe("it's a value");
    expect(await follower.kvGet('missing')).toBeNull();
    expect(await follower.kvListKeys()).toEqual(['k']);
    const index = await follower.logAppend('audit: hello');
    expect(await follower.logGetEntry(index)).toMatchObject({ index, type: 'normal', data: 'audit: hello' });
    expect(await follower.logGetEntry(1)).toMatchObject({ index: 1, type: 'conf_change', data: 'add voter 1' });
    expect(await follower.logGetEntry(10 ** 9)).toBeNull();
    expect(await follower.kvDelete('k')).toBe(true);
    expect(await follower.kvDelete('k')).toBe(false);
    expect(await follower.kvGetStats()).toMatchObject({ numKeys: 0, puts: 1, deletes: 2 });
  });

  test('membership changes on a follower raise the not-leader error whose hint names the leader\'s address', async () => {
    const as = await c.start(3);
    const leader = await c.leader();
    const other = as.find((a) => a !== leader)!;
    // A voter learns who won from the new leader's first append, a moment after the election.
    await waitFor('the follower to know the leader', () => other.leaderId() === leader.id);
    const follower = new AgentControlPlane(other);
    const err = await follower.addNode(9, '127.0.0.1', 7999).catch((e) => e);
    expect(err).toBeInstanceOf(ControlError);
    expect(err.sqlstate).toBe(SqlState.NotLeader);
    expect(err.hint).toContain(`node ${leader.id}`);
    expect(err.hint).toContain(`127.0.0.1:${leader.port}`);
    await expect(follower.replicationStatus()).rejects.toMatchObject({ sqlstate: SqlState.NotLeader });
  });

  test('pgraft_init starts a single-node cluster on an empty node; then nodes are added on it', async () => {
    const { agent: first } = await c.startEmpty(1);
    const cp = new AgentControlPlane(first);
    expect(cp.snapshot()).toMatchObject({ nodeId: 1, leaderId: 0, nodes: [] });
    expect(await cp.init()).toBe(true);
    expect(first.isLeader()).toBe(true);
    await expect(cp.init()).rejects.toMatchObject({ sqlstate: SqlState.ChangeInProgress });
    const { port } = await c.startEmpty(2);
    expect(await cp.addNode(2, '127.0.0.1', port)).toBe(true);
    const snap = cp.snapshot();
    expect(snap).toMatchObject({ nodeId: 1, leaderId: 1, role: 'leader', workerState: 'RUNNING' });
    expect(snap.nodes.map((n) => [n.id, n.role, n.port])).toEqual([
      [1, 'voter', first.port],
      [2, 'voter', port],
    ]);
    const rows = await cp.replicationStatus();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ nodeId: 2, role: 'voter', port });
    await waitFor('node 2 to catch up', () => rows[0].lag >= 0);
  });

  test('a second membership change while one is pending is refused as in progress', async () => {
    await c.start(3);
    const cp = new AgentControlPlane(await c.leader());
    const { port: p4 } = await c.startEmpty(4);
    // Both are proposed before the first can commit.
    const first = cp.addNode(4, '127.0.0.1', p4);
    const second = cp.removeNode(3);
    await expect(second).rejects.toMatchObject({ sqlstate: SqlState.ChangeInProgress });
    expect(await first).toBe(true);
  });
});
