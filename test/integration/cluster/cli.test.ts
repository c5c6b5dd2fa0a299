/**
 * Clusters started through `pgraft agent`, driven with the control commands and the HTTP
 * API as an operator and an application would: status, health, forwarding of writes,
 * leadership transfer, snapshots, token auth, and the exit codes scripts rely on.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LEVEL, TestCluster, cleanupAgents, expectAllReadable, freePorts, putMany, runCli, tempDir, waitFor } from '../../support/agents';

afterEach(cleanupAgents);

describe('a 3-node cluster through the CLI', () => {
  test('status, health, writes through a follower, reads, leadership transfer and snapshot', async () => {
    const c = await TestCluster.create({ size: 3 });
    c.startFounders();
    const leader = await c.waitLeader();
    const follower = c.running().find((n) => n !== leader)!;

    // Every node is healthy once a leader is known; only the leader answers /leader with 200.
    for (const n of c.running()) {
      const h = await runCli(['health', '--api', n.apiAddress]);
      expect({ node: n.id, code: h.code }).toEqual({ node: n.id, code: 0 });
      expect(h.stdout).toMatch(new RegExp(`leader ${leader.id}`));
      expect((await n.api('GET', '/leader')).status).toBe(n === leader ? 200 : 503);
    }

    // A write sent to a follower is forwarded to the leader.
    const put = await follower.api('PUT', '/v1/kv/greeting', 'hello');
    expect(put.status).toBe(200);
    // Taken by the follower itself: Raft carries it to the leader.
    expect(put.headers['x-pgraft-handled-by']).toBe(String(follower.id));
    expect((await follower.api('GET', '/v1/kv/greeting')).body).toEqual({ key: 'greeting', value: 'hello' });
    expect((await follower.api('GET', '/v1/kv/absent')).status).toBe(404);
    const del = await follower.api('DELETE', '/v1/kv/greeting');
    expect(del.body).toMatchObject({ key: 'greeting', deleted: true });
    expect((await leader.api('GET', '/v1/kv/greeting')).status).toBe(404);
    const keys = await putMany(follower, 'cli-', 20);

    // The status table, from a follower: every member with its role, the leader's view of lag.
    const st = await runCli(['status', '--api', follower.apiAddress]);
    expect(st.code).toBe(0);
    const rows = st.stdout.split('\n').filter((l) => /^\d+\s/.test(l));
    expect(rows).toHaveLength(3);
    for (const n of c.nodes.values()) {
      const row = rows.find((r) => r.startsWith(`${n.id} `))!;
      expect(row).toContain(n.raftAddress);
      expect(row).toMatch(n === leader ? /\bleader\b/ : /\bfollower\b/);
      // match index, lag 0, last contact, and the version each member reports
      expect(row).toMatch(new RegExp(`\\s\\d+\\s+0\\s+(-|\\d+ms ago|\\d+\\.\\ds ago)\\s+${(await n.status()).version.replace(/\./g, '\\.')}$`));
    }
    const json = JSON.parse((await runCli(['status', '--json', '--api', leader.apiAddress])).stdout);
    expect(json).toMatchObject({ nodeId: leader.id, role: 'leader', leaderId: leader.id });
    expect(json.members.map((m: { id: number }) => m.id)).toEqual([1, 2, 3]);

    // Leadership moves where it is asked to, through any node's API.
    const target = c.running().find((n) => n !== leader && n !== follower)!;
    const tr = await runCli(['transfer-leadership', '--target', String(target.id), '--api', follower.apiAddress]);
    expect({ code: tr.code, stderr: tr.stderr }).toEqual({ code: 0, stderr: '' });
    expect(tr.stdout).toMatch(new RegExp(`to node ${target.id}`));
    const next = await c.waitLeader();
    expect(next.id).toBe(target.id);
    await expectAllReadable(next, keys);

    // A snapshot on demand.
    const snap = await runCli(['snapshot', '--json', '--api', follower.apiAddress]);
    expect(snap.code).toBe(0);
    expect(JSON.parse(snap.stdout)).toMatchObject({ nodeId: follower.id });
    await follower.p.waitForLog('the snapshot', (l) => l.msg === 'snapshot taken');
  });

  test('exit codes: usage 2, unreachable 3, refused 1, no leader 4', async () => {
    const usage = await runCli(['remove']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/Not enough non-option arguments|id/);
    expect((await runCli(['wait-sync'])).code).toBe(2); // --node is required
    expect((await runCli(['remove', 'abc'])).code).toBe(2);
    expect((await runCli(['status', '--request-timeout', 'soon'])).code).toBe(2);
    expect((await runCli(['agent', '--learner'])).code).toBe(2);
    // An invalid configuration: every problem on stderr with its file and line, nothing started.
    const bad = path.join(tempDir(), 'postgresql.conf');
    fs.writeFileSync(bad, "pgraft.node_id = 1\npgraft.data_dir = '/nonexistent/pgraft'\npgraft.election_timeout = 'soon'\npgraft.nodeid = 2\n");
    const invalid = await runCli(['agent', '--config', bad]);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain(`${bad}:3: invalid value "soon" for pgraft.election_timeout`);
    expect(invalid.stderr).toMatch(new RegExp(`${bad}:4: unknown setting "pgraft.nodeid"; did you mean "pgraft.node_id"\\?`));
    const [free] = await freePorts(1);
    const unreachable = await runCli(['health', '--api', `127.0.0.1:${free}`]);
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr).toMatch(/cannot reach the agent/);

    const c = await TestCluster.create({ size: 3 });
    c.startFounders();
    const leader = await c.waitLeader();
    const refused = await runCli(['transfer-leadership', '--target', '9', '--api', leader.apiAddress]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/node 9 is not a member/);

    // With two of three nodes gone the last one loses its leader: health says 4, writes time out or 503.
    const others = c.running().filter((n) => n !== leader);
    for (const n of others) await n.kill9();
    await waitFor('the leader to step down without a quorum', async () => (await leader.status()).role !== 'leader', 10_000);
    const h = await runCli(['health', '--api', leader.apiAddress]);
    expect(h.code).toBe(4);
    expect(h.stdout).toMatch(/unhealthy/);
    // Removing a lost member needs a quorum too: the refusal points at the way out.
    const gone = await runCli(['remove', String(others[0].id), '--api', leader.apiAddress]);
    expect(gone.code).toBe(4);
    expect(gone.stderr).toMatch(/hint: retry in a few seconds; .*if most of them are lost for good, see pgraft force-new-cluster/);
  });

  test('help and version; the CLI (and so the agent) runs without node\'s ES module loader', async () => {
    // An ES-module-only dependency would bring the loader and its CommonJS lexer into every
    // agent for good: about 3 MB more RSS under load, measured with yargs 18.
    const dir = tempDir();
    const modules = path.join(dir, 'modules.json');
    const preload = path.join(dir, 'record-modules.js');
    fs.writeFileSync(preload, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(modules)}, JSON.stringify(process.moduleLoadList)));\n`);
    const withRecord = { NODE_OPTIONS: `--require ${preload}` };
    const version = (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string }).version;

    expect(await runCli(['--version'], withRecord)).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
    const help = await runCli(['agent', '--help'], withRecord);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^pgraft agent\n/);
    expect(help.stdout).toContain('--join-timeout');
    const [free] = await freePorts(1);
    expect((await runCli(['status', '--api', `127.0.0.1:${free}`], withRecord)).code).toBe(3);

    const loaded = JSON.parse(fs.readFileSync(modules, 'utf8')) as string[];
    expect(loaded).toContain('NativeModule http');
    expect(loaded.filter((m) => /cjs-module-lexer|esm\/translators|esm\/module_job/.test(m))).toEqual([]);
  });

  test('a 5-node cluster keeps serving with two nodes killed', async () => {
    const c = await TestCluster.create({ size: 5 });
    c.startFounders();
    const leader = await c.waitLeader();
    const st = await leader.status();
    expect(st.members.map((m) => m.role)).toEqual(['voter', 'voter', 'voter', 'voter', 'voter']);
    const first = await putMany(leader, 'five-a-', 10);
    for (const n of c.running().filter((x) => x !== leader).slice(0, 2)) await n.kill9();
    const second = await putMany(leader, 'five-b-', 10);
    const rest = c.running();
    expect(rest).toHaveLength(3);
    await c.waitApplied((await leader.status()).commitIndex, rest);
    for (const n of rest) await expectAllReadable(n, [...first, ...second], 'stale');
  });
});

describe('token auth', () => {
  test('mutating calls need the token; reads stay open; the CLI exits 6 without it', async () => {
    const c = await TestCluster.create({ size: 3, spare: 1 });
    const tokenFile = path.join(c.dir, 'token');
    fs.writeFileSync(tokenFile, 's3cret-token\n', { mode: 0o600 });
    for (const n of c.nodes.values()) {
      n.settings['pgraft.auth_token'] = n.id === 4 ? "'not-the-token'" : "''";
      if (n.id !== 4) n.settings['pgraft.auth_token_file'] = `'${tokenFile}'`;
      n.writeConfig();
    }
    c.startFounders();
    const leader = await c.waitLeader();
    const follower = c.running().find((n) => n !== leader)!;

    const anonymous = await follower.api('PUT', '/v1/kv/k', 'v');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error).toMatch(/needs the API token/);
    expect((await follower.api('PUT', '/v1/kv/k', 'v', { authorization: 'Bearer wrong' })).status).toBe(401);
    const ok = await follower.api('PUT', '/v1/kv/k', 'v', { authorization: 'Bearer s3cret-token' });
    expect(ok.status).toBe(200);
    expect((await follower.api('GET', '/v1/kv/k')).body.value).toBe('v');
    expect((await follower.api('GET', '/v1/status')).status).toBe(200);

    expect((await runCli(['snapshot', '--api', follower.apiAddress])).code).toBe(6);
    expect((await runCli(['snapshot', '--api', follower.apiAddress, '--token', 's3cret-token'])).code).toBe(0);
    expect((await runCli(['snapshot', '--api', follower.apiAddress], { PGRAFT_AUTH_TOKEN: 's3cret-token' })).code).toBe(0);

    // A node that presents another token cannot join: it stops with exit code 6.
    const intruder = c.node(4).start(['--join', follower.apiAddress]);
    expect((await intruder.waitExit(10_000)).code).toBe(6);
    expect(intruder.lines.find((l) => l.level === LEVEL.fatal)?.msg).toMatch(/could not join the cluster.*API token/);
    expect((await leader.status()).members.map((m) => m.id)).toEqual([1, 2, 3]);
  });
});
