/**
 * What an operator sees: /metrics that promtool accepts, logs that stay silent in steady
 * state and give one info line per election, leadership change, membership change and
 * snapshot, and a SIGHUP reload that applies live settings and names the ones that need a
 * restart.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { LEVEL, LogLine, REPO, TestCluster, TestNode, cleanupAgents, freePorts, http, putMany, runCli, waitFor } from '../../support/agents';

afterEach(cleanupAgents);

/** Info-or-worse lines a node logged after `from`. */
function linesSince(n: TestNode, from: number): LogLine[] {
  return n.p.lines.slice(from).filter((l) => l.level >= LEVEL.info);
}

function marks(c: TestCluster): Map<number, number> {
  return new Map(c.running().map((n) => [n.id, n.p.lines.length]));
}

/** A cluster whose members have all announced their API address and applied everything: nothing left to do. */
async function settled(c: TestCluster): Promise<TestNode> {
  const leader = await c.waitLeader();
  await waitFor('every member to show its API address and be caught up', async () => {
    const st = await leader.status();
    return st.members.every((m) => m.apiAddress !== '' && m.lag === 0) && (await c.running()[0].status()).appliedIndex === st.commitIndex;
  });
  return leader;
}

describe('metrics', () => {
  beforeAll(() => {
    execFileSync(path.join(REPO, 'scripts', 'ensure-tool'), ['promtool', 'prometheus'], { stdio: 'inherit', timeout: 300_000 });
  }, 300_000);

  test('a live agent serves /metrics that promtool check metrics accepts', async () => {
    const c = await TestCluster.create({ size: 3, settings: { 'pgraft.snapshot_interval': '15' } });
    c.startFounders();
    const leader = await c.waitLeader();
    await putMany(leader, 'm-', 20); // proposals, fsyncs and a snapshot have been observed
    const follower = c.running().find((n) => n !== leader)!;
    for (const n of [leader, follower]) {
      const res = await http(n.metricsPort, 'GET', '/metrics');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
      const lint = spawnSync('promtool', ['check', 'metrics'], { input: res.text, encoding: 'utf8' });
      expect({ node: n.id, status: lint.status, out: lint.stdout + lint.stderr }).toEqual({ node: n.id, status: 0, out: '' });
      for (const name of [
        'pgraft_term',
        'pgraft_leader_id',
        'pgraft_is_leader',
        'pgraft_log_size',
        'pgraft_commit_index',
        'pgraft_applied_index',
        'pgraft_elections_total',
        'pgraft_proposals_total',
        'pgraft_proposal_commit_seconds_bucket',
        'pgraft_fsync_duration_seconds_bucket',
        'pgraft_snapshots_total',
        'pgraft_snapshot_duration_seconds_bucket',
        'pgraft_peer_last_contact_seconds',
        'pgraft_process_cpu_seconds_total',
        'pgraft_process_resident_memory_bytes',
      ]) {
        expect(res.text).toMatch(new RegExp(`^${name}[{ ]`, 'm'));
      }
      expect(res.text).toMatch(new RegExp(`^pgraft_leader_id ${leader.id}$`, 'm'));
      expect(res.text).toMatch(new RegExp(`^pgraft_is_leader ${n === leader ? 1 : 0}$`, 'm'));
    }
    const lm = (await http(leader.metricsPort, 'GET', '/metrics')).text;
    expect(lm).toMatch(/^pgraft_proposals_total\{result="committed"\} [1-9]\d*$/m);
    for (const n of c.running()) {
      if (n !== leader) expect(lm).toMatch(new RegExp(`^pgraft_peer_replication_lag_entries\\{peer="${n.id}"\\} 0$`, 'm'));
    }
    // A follower tracks no replication lag: it would be stale.
    expect((await http(follower.metricsPort, 'GET', '/metrics')).text).not.toMatch(/^pgraft_peer_replication_lag_entries\{/m);
    expect((await http(leader.metricsPort, 'GET', '/nothing')).status).toBe(404);
  });

  test("the agent's heap settings hold from start-up and under writes: its young generation stays at 2 MB", async () => {
    // Without them, loading the program alone grows it to 8 MB; with them lost after start-up
    // (as a worker thread's heap once did), these writes grew it to 8 MB.
    const c = await TestCluster.create({ size: 1 });
    c.startFounders();
    const leader = await c.waitLeader();
    await putMany(leader, 'young-', 3000);
    const text = (await http(leader.metricsPort, 'GET', '/metrics')).text;
    const m = /^pgraft_nodejs_heap_space_size_total_bytes\{space="new"\} (\d+)$/m.exec(text);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(4 * 1024 * 1024);
  });
});

describe('logs', () => {
  test('silent in steady state; one info line per election, leadership change, membership change and snapshot', async () => {
    const c = await TestCluster.create({ size: 3, spare: 1 });
    c.startFounders();
    let leader = await settled(c);

    // Steady state: 2.5 seconds of heartbeats and nothing else must print nothing.
    let m = marks(c);
    const windowEnd = Date.now() + 2500;
    await waitFor('the end of the observation window', () => Date.now() >= windowEnd, 5000, 100);
    for (const n of c.running()) expect({ node: n.id, lines: n.p.lines.slice(m.get(n.id)) }).toEqual({ node: n.id, lines: [] });

    // Leadership change: one line on each node.
    m = marks(c);
    const target = c.running().find((n) => n !== leader)!;
    expect((await runCli(['transfer-leadership', '--target', String(target.id), '--api', leader.apiAddress])).code).toBe(0);
    leader = await c.waitLeader();
    await waitFor('every node to report the new leader', () => c.running().every((n) => linesSince(n, m.get(n.id)!).length >= 1));
    for (const n of c.running()) {
      const got = linesSince(n, m.get(n.id)!).map((l) => l.msg);
      expect({ node: n.id, got }).toEqual({ node: n.id, got: [n === target ? 'became leader' : 'leader elected'] });
    }

    // Membership change: node 4 joins as a learner; one line on each member.
    m = marks(c);
    const members = c.running();
    const n4 = c.node(4);
    n4.start(['--join', leader.apiAddress, '--learner']);
    await n4.p.waitForLog('that it joined', (l) => l.msg === 'joined the cluster as a learner', 15_000);
    await waitFor('every member to apply the change', () => members.every((n) => linesSince(n, m.get(n.id)!).length >= 1));
    for (const n of members) {
      const got = linesSince(n, m.get(n.id)!).map((l) => l.msg);
      expect({ node: n.id, got }).toEqual({ node: n.id, got: ['membership change committed'] });
    }

    // A snapshot: one line on the node that took it, none elsewhere.
    await settled(c);
    m = marks(c);
    const snapper = members.find((n) => n !== leader)!;
    expect((await snapper.api('POST', '/v1/snapshot')).status).toBe(200);
    await snapper.p.waitForLog('the snapshot', (l) => l.msg === 'snapshot taken', 5000, m.get(snapper.id));
    for (const n of c.running()) {
      expect({ node: n.id, got: linesSince(n, m.get(n.id)!).map((l) => l.msg) }).toEqual({ node: n.id, got: n === snapper ? ['snapshot taken'] : [] });
    }

    // An election after the leader dies: one info line on each survivor.
    m = marks(c);
    await leader.kill9();
    const next = await c.waitLeader(c.running());
    await waitFor('every survivor to report the new leader', () => c.running().every((n) => linesSince(n, m.get(n.id)!).some((l) => l.level === LEVEL.info)));
    for (const n of c.running()) {
      const info = linesSince(n, m.get(n.id)!).filter((l) => l.level === LEVEL.info).map((l) => l.msg);
      expect({ node: n.id, info }).toEqual({ node: n.id, info: [n === next ? 'became leader' : 'leader elected'] });
    }
  });
});

describe('configuration reload (SIGHUP)', () => {
  test('live settings apply at once; restart-only ones are named in a warning; the old configuration stays on errors', async () => {
    const c = await TestCluster.create({ size: 3 });
    c.startFounders();
    const leader = await settled(c);
    const n = leader;
    const [otherPort] = await freePorts(1);

    let from = n.p.lines.length;
    Object.assign(n.settings, { 'pgraft.snapshot_interval': '5', 'pgraft.port': String(otherPort) });
    n.writeConfig();
    n.p.signal('SIGHUP');
    const reloaded = await n.p.waitForLog('the reload', (l) => /^configuration reloaded/.test(l.msg), 5000, from);
    expect(reloaded.applied).toEqual([expect.stringMatching(/^pgraft\.snapshot_interval: 10000 -> 5 /)]);
    const restart = await n.p.waitForLog('the restart warning', (l) => /only after a restart/.test(l.msg), 5000, from);
    expect(restart.level).toBe(LEVEL.warn);
    expect(restart.msg).toContain(`pgraft.port: ${n.raftPort} -> ${otherPort}`);
    // The new snapshot interval is in force: a few writes trigger a snapshot.
    from = n.p.lines.length;
    await putMany(n, 'reload-', 6);
    // Wait for the last snapshot those writes trigger: one taken later would log at info after
    // the next reload's mark. Nothing else writes, so none follows one within 5 of the applied index.
    const { appliedIndex } = await n.status();
    await n.p.waitForLog('a snapshot under the new interval', (l) => l.msg === 'snapshot taken' && appliedIndex - Number(l.index) < 5, 5000, from);

    // log_level = warn silences the next leadership change on this node.
    from = n.p.lines.length;
    n.settings['pgraft.log_level'] = 'warn';
    n.writeConfig();
    n.p.signal('SIGHUP');
    await waitFor('the reload to be read', async () => {
      // The reload logs nothing at info any more; the pending-restart warning still shows.
      return n.p.lines.slice(from).some((l) => /only after a restart/.test(l.msg));
    });
    expect(n.p.lines.slice(from).filter((l) => l.level < LEVEL.warn)).toEqual([]);

    // A broken file is refused and the running configuration stays.
    from = n.p.lines.length;
    n.settings['pgraft.election_timeout'] = "'soon'";
    n.writeConfig();
    n.p.signal('SIGHUP');
    const refused = await n.p.waitForLog('the refused reload', (l) => /reload failed/.test(l.msg), 5000, from);
    expect(refused.level).toBe(LEVEL.error);
    expect(refused.msg).toMatch(/pgraft\.election_timeout/);
    expect(n.p.running).toBe(true);
    expect((await n.api('GET', '/health')).status).toBe(200);
  });
});
