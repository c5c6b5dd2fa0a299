/**
 * Membership changes with real agent processes while writes continue: a node joining with
 * --join, a node added with the CLI (learner, wait-sync, promotion), members removed; and a
 * follower so far behind that it can only catch up from a snapshot.
 */
import * as fs from 'node:fs';
import { ExitCode } from '../../../agent/cli/exit_codes';
import { LEVEL, TestCluster, Writer, cleanupAgents, expectAllReadable, putMany, runCli, waitFor } from '../../support/agents';

afterEach(cleanupAgents);

async function voters(n: { status(): Promise<{ members: { id: number; role: string }[] }> }): Promise<{ voters: number[]; learners: number[] }> {
  const st = await n.status();
  return {
    voters: st.members.filter((m) => m.role === 'voter').map((m) => m.id),
    learners: st.members.filter((m) => m.role === 'learner').map((m) => m.id),
  };
}

describe('membership', () => {
  test('nodes are added and removed while writes continue', async () => {
    const c = await TestCluster.create({ size: 3, spare: 2 });
    c.startFounders();
    const leader = await c.waitLeader();
    const follower = c.running().find((n) => n !== leader)!;
    const writer = new Writer(c, 'member-');
    await waitFor('some writes acknowledged', () => writer.acked.length >= 20);

    // Node 4 joins through a follower's API: it is added as a learner, catches up, then votes.
    const n4 = c.node(4);
    n4.start(['--join', follower.apiAddress]);
    await n4.p.waitForLog('that it joined', (l) => l.msg === 'joined the cluster as a voter', 20_000);
    expect(await voters(leader)).toEqual({ voters: [1, 2, 3, 4], learners: [] });

    // Node 5 starts knowing nobody; the CLI adds it as a learner, waits for it, promotes it.
    const n5 = c.node(5);
    n5.start();
    await waitFor('node 5 to answer on its API', () => n5.status());
    const api = ['--api', follower.apiAddress];
    const learner = await runCli(['add-learner', '5', n5.raftAddress, '--api-addr', n5.apiAddress, ...api]);
    expect({ code: learner.code, stderr: learner.stderr }).toEqual({ code: 0, stderr: '' });
    expect(await voters(leader)).toEqual({ voters: [1, 2, 3, 4], learners: [5] });
    const sync = await runCli(['wait-sync', '--node', '5', '--timeout', '20s', ...api]);
    expect(sync.code).toBe(0);
    expect(sync.stdout).toMatch(/node 5 has caught up/);
    const voter = await runCli(['add-voter', '5', n5.raftAddress, ...api]);
    expect(voter.code).toBe(0);
    expect(await voters(leader)).toEqual({ voters: [1, 2, 3, 4, 5], learners: [] });

    // Remove the joined node and a founding follower.
    const gone = [4, follower.id];
    for (const id of gone) {
      const r = await runCli(['remove', String(id), '--api', leader.apiAddress]);
      expect({ id, code: r.code, stderr: r.stderr }).toEqual({ id, code: 0, stderr: '' });
    }
    const remaining = [1, 2, 3, 4, 5].filter((id) => !gone.includes(id));
    expect(await voters(leader)).toEqual({ voters: remaining, learners: [] });
    const term = (await leader.status()).term;

    // Removing a node that is not a member is refused with "failed" (1), not usage.
    const again = await runCli(['remove', String(gone[0]), '--api', leader.apiAddress]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/not a member/);

    // The removed nodes still run (they never learn that their removal committed); with
    // pre-vote they cannot disturb the others.
    const before = writer.acked.length;
    await waitFor('writes acknowledged after the removals', () => writer.acked.length >= before + 40, 15_000);
    const acked = await writer.stop();
    expect((await leader.status()).term).toBe(term);
    for (const id of gone) await c.node(id).stop();
    await expectAllReadable(leader, acked);
    await c.waitApplied((await leader.status()).commitIndex, c.running());
    for (const n of c.running()) await expectAllReadable(n, acked.slice(-20), 'stale');
  });

  test('a founding member that lost its data stops when started as it is; removed, emptied and --join, it is a member again', async () => {
    const c = await TestCluster.create({ size: 3 });
    c.startFounders();
    const leader = await c.waitLeader();
    const keys = await putMany(leader, 'kept-', 10);
    const lost = c.running().find((n) => n !== leader)!;
    await lost.kill9();
    fs.rmSync(lost.dataDir, { recursive: true, force: true });

    // Started as it is, it bootstraps from initial_cluster again; the leader, which counts
    // it as holding every entry, tells it what is committed, and it stops.
    const wrong = lost.start();
    expect((await wrong.waitExit(15_000)).code).toBe(ExitCode.FENCED);
    const fatal = wrong.lines.find((l) => l.msg === 'agent stopped: it no longer acknowledges anything');
    const said = new RegExp(`^node ${leader.id}, the leader, counts this node \\(${lost.id}\\) as holding the log up to entry (\\d+), but its log ends at (\\d+): its data was lost`).exec(
      (fatal?.err as { message?: string } | undefined)?.message ?? '',
    );
    expect(said).not.toBeNull();
    // It had acknowledged at least the ten writes; the bootstrap entries are all it has now.
    expect(Number(said![1])).toBeGreaterThanOrEqual(10);
    expect(Number(said![2])).toBeLessThan(Number(said![1]));
    expect(wrong.lines.filter((l) => l.level >= LEVEL.info && /became leader|leader elected/.test(l.msg))).toEqual([]);
    expect((await lost.start().waitExit(10_000)).code).toBe(ExitCode.FENCED);

    // docs/cli.md, "When one node loses its data": remove, empty, --join.
    const removed = await runCli(['remove', String(lost.id), '--api', leader.apiAddress]);
    expect({ code: removed.code, stderr: removed.stderr }).toEqual({ code: 0, stderr: '' });
    fs.rmSync(lost.dataDir, { recursive: true, force: true });
    lost.start(['--join', leader.apiAddress]);
    await lost.p.waitForLog('that it joined', (l) => l.msg === 'joined the cluster as a voter', 20_000);
    expect(lost.p.lines.some((l) => /pgraft\.initial_cluster names this node .* --join was given/.test(l.msg))).toBe(true);
    expect(await voters(leader)).toEqual({ voters: [1, 2, 3], learners: [] });
    await expectAllReadable(lost, [...keys, ...(await putMany(leader, 'after-', 3))]);
  });

  test('a follower far behind catches up through a snapshot', async () => {
    const c = await TestCluster.create({
      size: 3,
      settings: { 'pgraft.snapshot_interval': '25', 'pgraft.max_log_entries': '0', 'pgraft.compaction_threshold': '1' },
    });
    c.startFounders();
    const leader = await c.waitLeader();
    const behind = c.running().find((n) => n !== leader)!;
    await behind.stop();

    const keys = await putMany(leader, 'snap-', 120);
    const st = await leader.status();
    expect(st.firstIndex).toBeGreaterThan(10); // the entries the stopped node lacks are gone from the log

    const run = behind.start();
    await run.waitForLog('a snapshot installed', (l) => l.msg === 'installed snapshot from the leader', 15_000);
    await leader.p.waitForLog('a snapshot sent', (l) => l.msg === `sending a snapshot to node ${behind.id}`);
    await c.waitApplied(st.commitIndex, [behind]);
    await expectAllReadable(behind, keys, 'stale');
  });
});
