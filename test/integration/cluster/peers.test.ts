/**
 * Peers that must not get in: a node of another cluster, a node whose certificate another
 * CA signed, and bytes that are not a pgraft frame at all. The cluster keeps working and
 * the refused node never receives the log.
 */
import * as crypto from 'node:crypto';
import * as net from 'node:net';
import { LEVEL, TestCluster, TestNode, cleanupAgents, expectAllReadable, putMany, waitFor } from '../../support/agents';
import { TestPki, makeTestPki } from '../../unit/transport/certs';

let pki: TestPki | null = null;

afterEach(async () => {
  await cleanupAgents();
  pki?.remove();
  pki = null;
});

/** The outsider (node 3) is refused: it never learns of a leader, and the leader never replicates to it. */
async function expectRefused(c: TestCluster, outsider: TestNode, logged: RegExp): Promise<void> {
  const insiders = c.running().filter((n) => n !== outsider);
  const leader = await c.waitLeader(insiders);
  const keys = await putMany(leader, 'in-', 5);
  const refusal = await outsider.p.waitForLog(`a warning matching ${logged}`, (l) => l.level >= LEVEL.warn && logged.test(l.msg));
  expect(refusal.msg).not.toMatch(/ECONNREFUSED/);
  const st = await leader.status();
  expect(st.members.find((m) => m.id === outsider.id)!.matchIndex).toBe(0);
  expect((await outsider.api('GET', '/health')).status).toBe(503);
  expect((await outsider.status()).leaderId).toBeNull();
  await expectAllReadable(leader, keys);
}

describe('peer refusals', () => {
  test('a node configured with another cluster id is refused', async () => {
    const c = await TestCluster.create({ size: 3 });
    const outsider = c.node(3);
    outsider.settings['pgraft.cluster_id'] = "'another-cluster'";
    outsider.writeConfig();
    c.startFounders();
    await expectRefused(c, outsider, /belongs to cluster|cluster "another-cluster"|another-cluster/);
    const leader = await c.waitLeader(c.running().filter((n) => n !== outsider));
    await leader.p.waitForLog('the refusal of the other cluster', (l) => l.level >= LEVEL.warn && /another-cluster/.test(l.msg));
  });

  test('with TLS on, a node whose certificate another CA signed is refused', async () => {
    pki = makeTestPki();
    const c = await TestCluster.create({ size: 3 });
    for (const n of c.nodes.values()) {
      const files = n.id === 3 ? pki.foreign : pki.node(`node${n.id}`);
      Object.assign(n.settings, {
        'pgraft.tls_cert_file': `'${files.certFile}'`,
        'pgraft.tls_key_file': `'${files.keyFile}'`,
        'pgraft.tls_ca_file': `'${files.caFile}'`,
      });
      n.writeConfig();
    }
    c.startFounders();
    for (const n of c.running()) await n.p.waitForLog('a TLS listener', (l) => /mutual TLS/.test(l.msg));
    await expectRefused(c, c.node(3), /certificate/);
  });

  test('garbage sent to the Raft port leaves the agent running', async () => {
    const c = await TestCluster.create({ size: 3 });
    c.startFounders();
    const leader = await c.waitLeader();
    const target = c.running().find((n) => n !== leader)!;
    const lines = target.p.lines.length;

    const send = (bytes: Buffer) =>
      new Promise<void>((resolve) => {
        const s = net.connect(target.raftPort, '127.0.0.1', () => {
          s.end(bytes);
        });
        s.on('error', () => resolve());
        s.on('close', () => resolve());
      });
    await send(crypto.randomBytes(64 * 1024));
    await send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await send(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x01, 0x02])); // an absurd frame length

    await target.p.waitForLog('a warning about the bad connection', (l) => l.level >= LEVEL.warn && /malformed|not a pgraft|frame/.test(l.msg), 5000, lines);
    expect(target.p.running).toBe(true);
    const keys = await putMany(target, 'after-garbage-', 5); // through the attacked node, forwarded
    await waitFor('the attacked node to apply the writes', async () => (await target.status()).appliedIndex >= (await leader.status()).commitIndex);
    await expectAllReadable(target, keys);
    expect((await target.api('GET', '/health')).status).toBe(200);
  });
});
