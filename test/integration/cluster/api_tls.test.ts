/**
 * The HTTP API over HTTPS (pgraft.api_tls = on): clients that trust the cluster CA get
 * answers, a follower passes writes on to the leader over HTTPS, a node joins through a
 * member's HTTPS API, and the CLI says what to change when the scheme or the CA is wrong.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { ExitCode } from '../../../agent/cli/exit_codes';
import { TestCluster, TestNode, cleanupAgents, expectAllReadable, http, putMany, runCli } from '../../support/agents';
import { TestPki, makeTestPki } from '../../unit/transport/certs';

let pki: TestPki | null = null;

afterEach(async () => {
  await cleanupAgents();
  pki?.remove();
  pki = null;
});

function serveHttps(n: TestNode, p: TestPki): void {
  const files = p.node(`node${n.id}`);
  Object.assign(n.settings, {
    'pgraft.tls_cert_file': `'${files.certFile}'`,
    'pgraft.tls_key_file': `'${files.keyFile}'`,
    'pgraft.tls_ca_file': `'${files.caFile}'`,
    'pgraft.api_tls': 'on',
  });
  n.writeConfig();
  n.apiCa = fs.readFileSync(files.caFile);
}

test('with api_tls on, the API, the forwarding to the leader, joins and the CLI run over HTTPS', async () => {
  pki = makeTestPki(4);
  const c = await TestCluster.create({ size: 3, spare: 1 });
  for (const n of c.nodes.values()) serveHttps(n, pki);
  c.startFounders();
  const leader = await c.waitLeader();
  await leader.p.waitForLog('the API address', (l) => l.msg === `HTTP API at https://${leader.apiAddress}`);

  const follower = c.running().find((n) => n !== leader)!;
  const keys = await putMany(follower, 'tls-', 10);
  await expectAllReadable(leader, keys);

  // Plain HTTP to an HTTPS port is answered, not dropped: 400, and what to use instead.
  const plainHttp = await http(leader.apiPort, 'GET', '/v1/status', undefined, {}, 3000);
  expect({ status: plainHttp.status, body: plainHttp.body }).toEqual({
    status: 400,
    body: {
      error: "this is pgraft's HTTP API over HTTPS (pgraft.api_tls = on), and the request came as plain HTTP",
      hint: `use https://${leader.apiAddress} and trust the cluster CA (pgraft.tls_ca_file): give --api https://${leader.apiAddress} --cacert CA_FILE to pgraft, --cacert CA_FILE to curl`,
    },
  });
  // ... and the HTTPS port still serves, on one connection after another.
  for (let i = 0; i < 3; i++) expect((await leader.api('GET', '/health')).status).toBe(200);

  // A node joins through a follower's HTTPS API; the follower passes the call on to the
  // leader's HTTPS API (only the leader changes membership), which answers through it.
  const n4 = c.node(4);
  n4.start(['--join', follower.apiAddress]);
  await n4.p.waitForLog('that it joined', (l) => l.msg === 'joined the cluster as a voter', 20_000);
  await expectAllReadable(n4, keys);
  const removed = await follower.api('DELETE', '/v1/members/4');
  expect({ status: removed.status, handledBy: removed.headers['x-pgraft-handled-by'] }).toEqual({ status: 200, handledBy: String(leader.id) });

  // The CLI: https:// with the CA works; --cacert alone implies HTTPS.
  const ca = pki.node('node1').caFile;
  const st = await runCli(['status', '--json', '--api', `https://${follower.apiAddress}`, '--cacert', ca]);
  expect({ code: st.code, stderr: st.stderr }).toEqual({ code: 0, stderr: '' });
  expect(JSON.parse(st.stdout)).toMatchObject({ nodeId: follower.id, leaderId: leader.id });
  const implied = await runCli(['health', '--api', leader.apiAddress, '--cacert', ca]);
  expect({ code: implied.code, stderr: implied.stderr }).toEqual({ code: 0, stderr: '' });

  // Wrong scheme or an untrusted certificate: the exit code and hint say what to change.
  const untrusted = await runCli(['status', '--api', `https://${leader.apiAddress}`]);
  expect(untrusted.code).toBe(ExitCode.UNREACHABLE);
  expect(untrusted.stderr).toMatch(/hint: give --cacert with the cluster's CA certificate/);
  const plain = await runCli(['status', '--api', leader.apiAddress]);
  expect(plain.code).toBe(ExitCode.FAILED);
  expect(plain.stderr).toContain(`give --api https://${leader.apiAddress}`);
  // rolling-restart checks every member's health over HTTPS before it runs the command.
  const rolling = await runCli(['rolling-restart', '--api', `https://${follower.apiAddress}`, '--cacert', ca, '--exec', 'exit 3']);
  expect(rolling.code).toBe(ExitCode.FAILED);
  expect(rolling.stderr).toMatch(/^pgraft: the restart command for node \d exited with 3\n/);
  const badCa = await runCli(['status', '--api', leader.apiAddress, '--cacert', `${ca}.missing`]);
  expect(badCa.code).toBe(ExitCode.USAGE);
  expect(badCa.stderr).toMatch(/cannot read --cacert .*\.missing/);

  // The HTTPS port closes with the agent: a clean stop, also with a connection still waiting
  // for its first byte.
  const idle = await new Promise<net.Socket>((resolve) => {
    const s = net.connect(follower.apiPort, '127.0.0.1', () => resolve(s));
  });
  const closed = new Promise((resolve) => idle.once('close', resolve));
  expect(await follower.stop()).toEqual({ code: 0, signal: null });
  await closed;
});

test('a client giving https:// to a plain HTTP API is told to drop it', async () => {
  const c = await TestCluster.create({ size: 1 });
  c.startFounders();
  const n = await c.waitLeader();
  const r = await runCli(['status', '--api', `https://${n.apiAddress}`]);
  expect(r.code).toBe(ExitCode.UNREACHABLE);
  expect(r.stderr).toContain(`give --api ${n.apiAddress} without https://`);
  const mixed = await runCli(['status', '--api', `http://${n.apiAddress}`, '--cacert', '/nonexistent.crt']);
  expect(mixed.code).toBe(ExitCode.USAGE);
  expect(mixed.stderr).toContain(`give --api https://${n.apiAddress}`);
  const ok = await runCli(['status', '--api', `http://${n.apiAddress}/`]);
  expect({ code: ok.code, stderr: ok.stderr }).toEqual({ code: 0, stderr: '' });
});
