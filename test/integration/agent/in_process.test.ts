import * as fs from 'node:fs';
import { Op } from '../../../agent/fsm/commands';
import { NotLeaderError, FencedError } from '../../../agent/node';
import { InProcessCluster, waitFor } from '../../support/in_process_cluster';
import { TestFs } from '../../unit/storage/helpers';

describe('agents in one process over loopback TCP', () => {
  let c: InProcessCluster;
  beforeEach(() => {
    c = new InProcessCluster();
  });
  afterEach(() => c.close());

  test('elect a leader, commit writes, read them linearizably from a follower', async () => {
    const as = await c.start(3);
    const leader = await c.leader();
    for (let i = 0; i < 20; i++) await leader.propose({ op: Op.Put, key: `k${i}`, value: `v${i}` });
    const follower = as.find((a) => a !== leader)!;
    expect(await follower.get('k19')).toBe('v19');
    expect(follower.fsm.keys()).toHaveLength(20);
    // A follower's write is forwarded to the leader and resolves when applied here.
    const r = await follower.propose({ op: Op.Put, key: 'from-follower', value: 'y' });
    expect(r.value).toBe(true);
    expect(follower.fsm.get('from-follower')).toBe('y');
    expect(await leader.get('from-follower')).toBe('y');
    // Membership changes stay on the leader, and say where it is.
    await expect(follower.removeMember(leader.id)).rejects.toBeInstanceOf(NotLeaderError);
  });

  test('an empty node added on the leader learns where to answer from the handshake and catches up', async () => {
    await c.start(3);
    const leader = await c.leader();
    for (let i = 0; i < 10; i++) await leader.propose({ op: Op.Put, key: `k${i}`, value: `v${i}` });
    const { agent: fresh, port } = await c.startEmpty(4);
    expect(fresh.isEmpty()).toBe(true);
    await leader.addMember(4, `127.0.0.1:${port}`, undefined, false, 10000);
    expect(leader.status().config.voters).toEqual([1, 2, 3, 4]);
    await waitFor('node 4 to apply the writes', () => fresh.fsm.get('k9') === 'v9');
  });

  test("followers elect a successor after the leader's connections drop", async () => {
    const as = await c.start(3);
    const leader = await c.leader();
    const term = leader.status().hardState.term;
    await leader.stop({ handOver: false }); // as if it crashed: no hand-over
    const next = await waitFor('a new leader', () => as.find((a) => a !== leader && a.isLeader()));
    expect(next.status().hardState.term).toBeGreaterThan(term);
  });

  test('a removed member learns of its removal and says so', async () => {
    const as = await c.start(3);
    const leader = await c.leader();
    const victim = as.find((a) => a !== leader)!;
    const removed = new Promise<void>((resolve) => victim.once('removed', () => resolve()));
    await leader.removeMember(victim.id);
    await removed;
    expect(victim.status().config.voters).not.toContain(victim.id);
  });

  test('a leader stopped gracefully hands leadership over first', async () => {
    const as = await c.start(3);
    const leader = await c.leader();
    const term = leader.status().hardState.term;
    await leader.stop();
    // The successor took over by transfer: it is leader already, one term later.
    const next = as.find((a) => a !== leader && a.isLeader());
    expect(next).toBeDefined();
    expect(next!.status().hardState.term).toBe(term + 1);
  });
  test('followers learn of the last commit promptly, though no later write or heartbeat carries it', async () => {
    const as = await c.start(3);
    const leader = await c.leader();
    await leader.propose({ op: Op.Put, key: 'warm', value: '1' });
    // Heartbeats every 30 s from now on (one tick every 3 s): only the commit flush can tell
    // the followers in time.
    for (const a of as) a.setTimeouts(300_000, 30_000);
    try {
      const { index } = await leader.propose({ op: Op.Put, key: 'last', value: '2' });
      const followers = as.filter((a) => a !== leader);
      await waitFor('both followers to apply the last write', () => followers.every((f) => f.fsm.appliedIndex >= index), 2000);
      for (const f of followers) expect(f.fsm.get('last')).toBe('2');
    } finally {
      for (const a of as) a.setTimeouts(300, 30); // so that stopping (with its hand-over) is quick
    }
  });

  test('a snapshot made due by entries applied while the last one was written follows it without further writes', async () => {
    const fs = new TestFs();
    await c.start(1, { snapshotInterval: 5, fs });
    const leader = await c.leader();
    const taken = () => fs.files('rename').flatMap((f) => /snapshot-(\d+)-\d+\.dat$/.exec(f)?.[1] ?? []).map(Number);
    const hold = fs.holdNext('sync', (f) => f.endsWith('.taken.tmp'));
    try {
      for (let i = 0; i < 5; i++) await leader.propose({ op: Op.Put, key: `a${i}`, value: 'x' });
      await hold.reached;
      // Seven more entries are applied while the first snapshot's file is held: the next is due.
      for (let i = 0; i < 7; i++) await leader.propose({ op: Op.Put, key: `b${i}`, value: 'x' });
    } finally {
      hold.release();
    }
    const applied = leader.fsm.appliedIndex;
    const [first, second] = await waitFor('a second snapshot', () => (taken().length >= 2 ? taken() : null));
    expect(applied - first).toBeGreaterThanOrEqual(7);
    expect(second).toBe(applied);
  });

  test('a member removed while it was down is refused when it comes back: it stops, and does not start again on its data', async () => {
    const as = await c.start(3);
    const leader = await c.leader();
    const victim = as.find((a) => a !== leader)!;
    const id = victim.id;
    const port = Number(leader.fsm.member(id)!.raftAddress.split(':')[1]);
    await victim.stop({ handOver: false });
    await leader.removeMember(id);
    await leader.propose({ op: Op.Put, key: 'after', value: 'removal' });
    const removal = leader.fsm.removedAt(id)!;
    expect(removal).toBeDefined();

    const back = await c.restart(id, port);
    await waitFor('the returning node to stop', () => back.state === 'ERROR');
    expect(back.failure).toBeInstanceOf(FencedError);
    expect(back.failure!.message).toContain(`removed from the cluster by log entry ${removal.index} (term ${removal.term})`);
    expect(back.failure!.message).toContain('empty pgraft.data_dir');
    expect(back.fsm.get('after')).toBeNull();
    // The members that refused it count the refusals, for an alert.
    const refusals = await Promise.all(
      as.filter((a) => a !== victim).map(async (a) => (await a.metrics.peerRefusals.get()).values.filter((v) => v.labels.reason === 'removed').reduce((n, v) => n + v.value, 0)),
    );
    expect(refusals.reduce((a, b) => a + b)).toBeGreaterThanOrEqual(1);
    await back.stop();
    // The note it left keeps it from starting on that data again.
    await expect(c.restart(id, port)).rejects.toThrow(/belongs to a node its cluster fenced off; the agent does not start on it/);

    // Emptied and added back under the same id, it is a member again and catches up.
    fs.rmSync(c.options(id, port).dataDir, { recursive: true, force: true });
    const fresh = await c.restart(id, port);
    await leader.addMember(id, `127.0.0.1:${port}`, undefined, false, 10000);
    expect(leader.fsm.removedAt(id)).toBeUndefined();
    await waitFor('the re-added node to catch up', () => fresh.fsm.get('after') === 'removal');
    expect(fresh.state).toBe('RUNNING');
  });
});
