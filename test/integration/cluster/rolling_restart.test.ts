/**
 * `pgraft rolling-restart` against three agent processes. The test plays the service
 * manager: a pid file names each node's running agent, and an agent that exits is started
 * again (as systemd's Restart= would), so the operator's command only has to stop it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ExitCode } from '../../../agent/cli/exit_codes';
import { AgentProcess, REPO, TestCluster, TestNode, Writer, cleanupAgents, expectAllReadable, runCli, waitFor } from '../../support/agents';

let c: TestCluster;
let supervising = true;
/** The version the agents are "upgraded" to: this build under another package version. */
const NEXT = '99.0.0-next';
const calls = () => path.join(c.dir, 'calls');
const pidFile = (id: number | string) => path.join(c.dir, `agent-${id}.pid`);

/** Records the call, then stops the node's agent (the supervisor starts it again). */
const stopAgent = () => `echo "$NODE_ID $NODE_ROLE $NODE_HOST" >> ${calls()} && kill -TERM "$(cat ${c.dir}/agent-$NODE_ID.pid)"`;

function supervise(n: TestNode, p: AgentProcess): void {
  fs.writeFileSync(pidFile(n.id), String(p.pid));
  p.child.once('exit', () => {
    if (supervising) supervise(n, n.start());
  });
}

const esc = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function called(): string[] {
  return fs.existsSync(calls()) ? fs.readFileSync(calls(), 'utf8').trim().split('\n').filter(Boolean) : [];
}

/** Through the first running node's API: any member will do. */
const rollingRestart = (...args: string[]) => runCli(['rolling-restart', '--api', c.running()[0].apiAddress, ...args], {}, 120_000);

/** A copy of this build that reports NEXT as its version. */
function nextRelease(): string {
  const root = path.join(c.dir, 'next');
  fs.cpSync(path.join(REPO, 'dist', 'agent'), path.join(root, 'dist', 'agent'), { recursive: true });
  fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'pgraft', version: NEXT }));
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(root, 'node_modules'));
  return path.join(root, 'dist', 'agent', 'cli', 'main.js');
}

beforeAll(async () => {
  c = await TestCluster.create({ size: 3 });
  for (const n of c.startFounders()) supervise(n, n.p);
  await c.waitLeader();
  // Every member's API address is recorded through the log once it knows a leader.
  await waitFor('every member to record its API address', async () => {
    const s = await (await c.waitLeader()).status();
    return s.members.every((m) => m.apiAddress !== '');
  });
});

afterAll(async () => {
  supervising = false;
  await cleanupAgents();
});

beforeEach(() => fs.rmSync(calls(), { force: true }));

const runs = () => [...c.nodes.values()].map((n) => n.runs.length);

test('a dry run prints the order and what the command would see, and restarts nothing', async () => {
  const leader = await c.waitLeader();
  const followers = [1, 2, 3].filter((id) => id !== leader.id);
  const r = await rollingRestart('--exec', 'false', '--dry-run');
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: ExitCode.OK, stderr: '' });
  expect(r.stdout).toContain(`restarting 3 nodes one at a time: ${followers[0]} (follower), ${followers[1]} (follower), ${leader.id} (leader)\n`);
  expect(r.stdout).toContain(
    `  node ${leader.id}: NODE_ID=${leader.id} NODE_API=${leader.apiAddress} NODE_HOST=127.0.0.1 NODE_RAFT=${leader.raftAddress} NODE_ROLE=leader\n`,
  );
  expect(r.stdout).toContain('dry run: nothing was restarted');
  expect(runs()).toEqual([1, 1, 1]);
});

test('a failing command stops the run at the first node', async () => {
  const r = await rollingRestart('--exec', `echo "$NODE_ID" >> ${calls()}; exit 7`);
  expect(r.code).toBe(ExitCode.FAILED);
  expect(r.stderr).toMatch(/the restart command for node \d exited with 7\n    hint: node \d's agent may or may not have restarted/);
  expect(called()).toHaveLength(1);
  expect(runs()).toEqual([1, 1, 1]);
});

test('a command that does not restart the agent is caught', async () => {
  const r = await rollingRestart('--exec', 'true', '--node-timeout', '2s');
  expect(r.code).toBe(ExitCode.TIMEOUT);
  expect(r.stderr).toMatch(/node \d did not come back within 2\.0 s: its agent still runs since \S+: the restart command did not restart it/);
  expect(runs()).toEqual([1, 1, 1]);
});

test('an upgrade: every node restarts once onto the new version, followers first, the leader last after handing over, and writes go on', async () => {
  const leader = await c.waitLeader();
  const before = (await leader.status()).version;
  expect(before).not.toBe(NEXT);
  // Installed on every server first; each agent runs it once restarted.
  const next = nextRelease();
  for (const n of c.nodes.values()) n.cli = next;
  const followers = [1, 2, 3].filter((id) => id !== leader.id);
  const writer = new Writer(c, 'rolling-');
  await waitFor('writes before the restarts', () => writer.acked.length >= 20);

  const r = await rollingRestart('--exec', stopAgent());
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: ExitCode.OK, stderr: '' });
  expect(called()).toEqual([`${followers[0]} follower 127.0.0.1`, `${followers[1]} follower 127.0.0.1`, `${leader.id} leader 127.0.0.1`]);
  expect(runs()).toEqual([2, 2, 2]);
  for (const n of c.nodes.values()) expect(n.runs[0].exited).toEqual({ code: 0, signal: null });
  expect(r.stdout).toMatch(new RegExp(`node ${leader.id}: handed leadership to node (${followers.join('|')})\n`));
  // The old leader was a follower by the time it stopped: it had nothing to hand over itself.
  expect(leader.runs[0].find((l) => /before stopping/.test(l.msg))).toEqual([]);
  for (const id of [...followers, leader.id]) expect(r.stdout).toMatch(new RegExp(`node ${id}: back and caught up in [\\d.]+ s \\(${esc(before)} -> ${esc(NEXT)}\\)\n`));
  const end = /done: 3 nodes restarted; node (\d) leads in term \d+\n/.exec(r.stdout);
  expect(end?.[1]).not.toBe(String(leader.id));

  const ackedSoFar = writer.acked.length;
  await waitFor('writes after the restarts', () => writer.acked.length >= ackedSoFar + 20);
  const acked = await writer.stop();
  await expectAllReadable(await c.waitLeader(), acked);
  // pgraft status shows the new version on every member.
  const st = await runCli(['status', '--api', c.running()[0].apiAddress]);
  const rows = st.stdout.split('\n').filter((l) => /^\d+\s/.test(l));
  expect(rows.map((l) => l.split(/\s+/).pop())).toEqual([NEXT, NEXT, NEXT]);
});

test('--nodes restarts only the members it names; a name that is not a member is a usage error', async () => {
  const leader = await c.waitLeader();
  const one = [...c.nodes.values()].find((n) => n !== leader)!;
  const before = runs();
  const r = await rollingRestart('--exec', stopAgent(), '--nodes', String(one.id));
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: ExitCode.OK, stderr: '' });
  expect(r.stdout).toContain(`restarting 1 of 3 nodes one at a time: ${one.id} (follower)\n`);
  expect(called()).toEqual([`${one.id} follower 127.0.0.1`]);
  expect(runs()).toEqual(before.map((k, i) => (i + 1 === one.id ? k + 1 : k)));

  const stranger = await rollingRestart('--exec', stopAgent(), '--nodes', `${one.id},7`);
  expect(stranger.code).toBe(ExitCode.USAGE);
  expect(stranger.stderr).toBe('pgraft: --nodes names a node that is not a member: 7\n    hint: the members are 1, 2, 3\n');
  expect(called()).toHaveLength(1);
});

test('a member that is down stops the run before anything is restarted', async () => {
  supervising = false;
  const leader = await c.waitLeader();
  const down = [...c.nodes.values()].find((n) => n !== leader)!;
  await down.stop();
  const r = await rollingRestart('--exec', stopAgent());
  expect(r.code).toBe(ExitCode.UNAVAILABLE);
  expect(r.stderr).toContain(`node ${down.id} (${down.apiAddress}) is not healthy: cannot reach the agent at ${down.apiAddress}`);
  expect(r.stderr).toContain('restarting any node now could leave the cluster without a quorum');
  expect(called()).toEqual([]);
});
