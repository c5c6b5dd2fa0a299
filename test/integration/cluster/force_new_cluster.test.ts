/**
 * Recovery from a quorum lost for good: `pgraft force-new-cluster` rewrites a stopped
 * survivor's data directory so that it is the only member, keeping its log. Its agent then
 * leads alone with every write it held, and new members join it as usual.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ExitCode } from '../../../agent/cli/exit_codes';
import { snapshotName } from '../../../agent/storage/layout';
import { TestCluster, cleanupAgents, expectAllReadable, putMany, runCli, waitFor } from '../../support/agents';

afterEach(cleanupAgents);

test('the survivor of a lost majority becomes a one-member cluster with all its data, and others join it', async () => {
  const c = await TestCluster.create({ size: 3, spare: 1 });
  c.startFounders();
  const leader = await c.waitLeader();
  const keys = await putMany(leader, 'before-', 20);
  const survivor = c.running().find((n) => n !== leader)!;
  const lost = c.running().filter((n) => n !== survivor).map((n) => n.id).sort((a, b) => a - b);
  const commit = (await leader.status()).commitIndex;
  await waitFor('the survivor to apply every write', async () => (await survivor.status()).appliedIndex >= commit);

  const force = (...extra: string[]) => runCli(['force-new-cluster', '--config', survivor.configFile, ...extra]);
  const running = await force('--yes');
  expect({ code: running.code, stderr: running.stderr }).toEqual({
    code: ExitCode.FAILED,
    stderr: expect.stringMatching(/its agent seems to be running\n    hint: stop the agent first/),
  });

  for (const n of c.running()) await n.kill9();

  // Without --yes: the plan, and nothing written (the same plan again).
  const dry = await force();
  expect(dry.code).toBe(ExitCode.USAGE);
  expect(dry.stdout).toContain(`cluster '${c.clusterId}' has the members 1, 2, 3.\n`);
  expect(dry.stdout).toContain(`would make node ${survivor.id} its only voter, removing ${lost.join(', ')} without their agreement`);
  expect(dry.stderr).toContain('pgraft: nothing was changed\n    hint: if the other members are lost for good, run the command again with --yes');
  expect((await force()).stdout).toBe(dry.stdout);

  const done = await force('--yes');
  expect({ code: done.code, stderr: done.stderr }).toEqual({ code: ExitCode.OK, stderr: '' });
  expect(done.stdout).toContain(`node ${survivor.id} is now the only voter of cluster '${c.clusterId}' (removed: ${lost.join(', ')})`);
  const again = await force('--yes');
  expect(again.stdout).toContain(`node ${survivor.id} already is the only voter`);

  // Alone, it elects itself and serves every write it held, and new ones.
  survivor.start();
  expect((await c.waitLeader([survivor])).id).toBe(survivor.id);
  const st = await survivor.status();
  expect(st.members.map((m) => m.id)).toEqual([survivor.id]);
  await expectAllReadable(survivor, keys);
  const after = await putMany(survivor, 'after-', 5);

  // A node with an empty data directory joins it and receives everything.
  const n4 = c.node(4);
  n4.start(['--join', survivor.apiAddress]);
  await n4.p.waitForLog('that it joined', (l) => l.msg === 'joined the cluster as a voter', 20_000);
  await expectAllReadable(n4, [...keys, ...after]);
  expect((await survivor.status()).members.map((m) => m.id)).toEqual([survivor.id, 4]);
});

test('a cluster restored from one snapshot file: force-new-cluster, then the node leads with the snapshot\'s data', async () => {
  const c = await TestCluster.create({ size: 3 });
  c.startFounders();
  const leader = await c.waitLeader();
  const keys = await putMany(leader, 'backed-up-', 20);
  const taken = await leader.api('POST', '/v1/snapshot', {});
  expect(taken.status).toBe(200);
  const snapshots = path.join(leader.dataDir, 'snapshots');
  const newest = snapshotName(taken.body.index, taken.body.term);
  const backup = fs.readFileSync(path.join(snapshots, newest));
  for (const n of c.running()) await n.kill9();

  // The backup is all that is left: an empty data directory but for the snapshot file.
  fs.rmSync(leader.dataDir, { recursive: true, force: true });
  fs.mkdirSync(snapshots, { recursive: true });
  fs.writeFileSync(path.join(snapshots, newest), backup);
  const done = await runCli(['force-new-cluster', '--config', leader.configFile, '--yes']);
  expect({ code: done.code, stderr: done.stderr }).toEqual({ code: ExitCode.OK, stderr: '' });

  leader.start();
  expect((await c.waitLeader([leader])).id).toBe(leader.id);
  await expectAllReadable(leader, keys);
  await putMany(leader, 'restored-', 3);
});

test('a node whose data directory holds no cluster has nothing to recover', async () => {
  const c = await TestCluster.create({ size: 1 });
  const r = await runCli(['force-new-cluster', '--config', c.node(1).configFile, '--yes']);
  expect(r.code).toBe(ExitCode.FAILED);
  expect(r.stderr).toMatch(/holds no cluster: there is nothing to recover\n    hint: an empty node starts a new cluster with pgraft agent --bootstrap/);
});

// Only root can give the data directory to another user.
(process.getuid?.() === 0 ? test : test.skip)('run by another user than the data directory\'s owner, it refuses and names the owner', async () => {
  const c = await TestCluster.create({ size: 1 });
  const n = c.node(1);
  n.start();
  await c.waitLeader();
  await n.kill9();
  fs.chownSync(n.dataDir, 65534, 65534);
  const r = await runCli(['force-new-cluster', '--config', n.configFile, '--yes']);
  expect(r.code).toBe(ExitCode.FAILED);
  expect(r.stderr).toMatch(/belongs to (nobody|user 65534), but this command runs as root: .*\n    hint: run it as (nobody|user 65534), e\.g\. sudo -u/);
});

test('members force-new-cluster removed that come back with their old data stop at once, and stay stopped', async () => {
  const c = await TestCluster.create({ size: 3 });
  c.startFounders();
  const leader = await c.waitLeader();
  const keys = await putMany(leader, 'before-', 5);
  const [survivor, ...lost] = c.running();
  const commit = (await leader.status()).commitIndex;
  await waitFor('the survivor to apply every write', async () => (await survivor.status()).appliedIndex >= commit);
  for (const n of c.running()) await n.kill9();
  const done = await runCli(['force-new-cluster', '--config', survivor.configFile, '--yes']);
  expect(done.code).toBe(ExitCode.OK);
  survivor.start();
  await c.waitLeader([survivor]);
  const term = (await survivor.status()).term;

  // Their disks were not lost after all: both come back together, with a quorum of the old
  // membership between them. The survivor refuses them, naming their removal, and they stop.
  for (const n of lost) n.start();
  for (const n of lost) {
    const exit = await n.p.waitExit(15_000);
    expect({ node: n.id, code: exit.code }).toEqual({ node: n.id, code: ExitCode.FENCED });
    const fatal = n.p.lines.find((l) => l.msg === 'agent stopped: it no longer acknowledges anything');
    expect((fatal?.err as { message?: string } | undefined)?.message).toMatch(new RegExp(`^node ${survivor.id} refused this node \\(${n.id}\\): it was removed from the cluster by log entry \\d+`));
    expect(n.p.lines.filter((l) => l.msg === 'became leader')).toEqual([]);
  }
  const st = await survivor.status();
  expect({ members: st.members.map((m) => m.id), term: st.term, leader: st.leaderId }).toEqual({ members: [survivor.id], term, leader: survivor.id });

  // Started again on that data, the agent refuses at once and says what to do.
  const again = lost[0].start();
  const exit = await again.waitExit(10_000);
  expect(exit.code).toBe(ExitCode.FENCED);
  const refusal = again.lines.find((l) => /the agent could not start/.test(l.msg));
  expect(refusal?.msg).toMatch(/belongs to a node its cluster fenced off; the agent does not start on it\. .*removed from the cluster by log entry \d+.*empty pgraft\.data_dir/);

  // force-new-cluster on it shows the mark in its plan: its data can still become a cluster of its own.
  const plan = await runCli(['force-new-cluster', '--config', lost[0].configFile]);
  expect(plan.stdout).toContain('Its data directory is marked as fenced off from its cluster, a mark the command would clear');

  // The way back the refusal names: an empty data directory, then --join, under the same id.
  fs.rmSync(lost[0].dataDir, { recursive: true, force: true });
  lost[0].start(['--join', survivor.apiAddress]);
  await lost[0].p.waitForLog('that it joined', (l) => l.msg === 'joined the cluster as a voter', 20_000);
  await expectAllReadable(lost[0], keys);
  expect((await survivor.status()).members.map((m) => m.id)).toEqual([survivor.id, lost[0].id].sort((a, b) => a - b));
});

test('removed members whose logs go further than the survivor\'s are refused too: the entry at that index is not the one that removed them', async () => {
  const c = await TestCluster.create({ size: 3 });
  c.startFounders();
  const leader = await c.waitLeader();
  const survivor = c.running().find((n) => n !== leader)!;
  const lost = c.running().filter((n) => n !== survivor);
  await putMany(leader, 'early-', 3);
  // The survivor falls behind: the other two go on committing without it.
  await survivor.kill9();
  await putMany(leader, 'late-', 10);
  const theirLast = (await leader.status()).lastIndex;
  for (const n of lost) await n.kill9();
  expect((await runCli(['force-new-cluster', '--config', survivor.configFile, '--yes'])).code).toBe(ExitCode.OK);
  survivor.start();
  await c.waitLeader([survivor]);

  for (const n of lost) n.start();
  for (const n of lost) {
    expect((await n.p.waitExit(15_000)).code).toBe(ExitCode.FENCED);
    const fatal = n.p.lines.find((l) => l.msg === 'agent stopped: it no longer acknowledges anything');
    const named = /removed from the cluster by log entry (\d+)/.exec((fatal?.err as { message?: string } | undefined)?.message ?? '');
    // Their logs hold that index, written in an older term by the leader they had.
    expect(Number(named?.[1])).toBeLessThan(theirLast);
    expect(n.p.lines.filter((l) => l.msg === 'became leader')).toEqual([]);
  }
  expect((await survivor.status()).members.map((m) => m.id)).toEqual([survivor.id]);
});
