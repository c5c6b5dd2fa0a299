import { Harness, Node, app, snap, waitFor } from './helpers';
import { TestPki, makeTestPki } from './certs';

let pki: TestPki;
beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki?.remove());

const h = new Harness();
afterEach(() => h.closeAll());

async function tlsNode(id: number, name = `node${id}`): Promise<Node> {
  return h.node(id, { tls: pki.node(name) });
}

/** A good TLS peer still gets through: a refusal closed one connection, not the listener. */
async function assertServes(target: Node): Promise<void> {
  const good = await tlsNode(3);
  good.transport.setPeer(target.id, '127.0.0.1', target.transport.port);
  good.transport.send([app(3, target.id, 99)]);
  await waitFor(() => target.received.some((m) => m.from === 3 && m.index === 99), 'a good TLS peer to get through');
}

describe('PeerTransport with mutual TLS', () => {
  test('two nodes with CA-signed certificates exchange messages and a snapshot', async () => {
    const a = await tlsNode(1);
    const b = await tlsNode(2);
    a.transport.setPeer(2, '127.0.0.1', b.transport.port);
    b.transport.setPeer(1, '127.0.0.1', a.transport.port);
    a.transport.send([app(1, 2, 1), snap(1, 2, 10, 256 * 1024)]);
    b.transport.send([app(2, 1, 2)]);
    await waitFor(() => b.received.length === 2 && a.received.length === 1, 'messages both ways', 5000, () => a.logger.dump() + b.logger.dump());
    expect(b.received.map((m) => m.index)).toEqual([1, 0]);
    await waitFor(() => a.snapshotStatus.length === 1, 'the snapshot status');
    expect(a.snapshotStatus).toEqual([{ peer: 2, ok: true }]);
    expect(a.logger.has('info', /mutual TLS/)).toBe(true);
  });

  test('hostname verification passes for a certificate naming the dialed address', async () => {
    const a = await h.node(1, { tls: { ...pki.node('node1'), verifyHostname: true } });
    const b = await tlsNode(2);
    a.transport.setPeer(2, '127.0.0.1', b.transport.port);
    a.transport.send([app(1, 2, 1)]);
    await waitFor(() => b.received.length === 1, 'delivery with hostname verification');
  });

  test('a client whose certificate comes from another CA is refused', async () => {
    const b = await tlsNode(2);
    const stranger = await h.node(1, { tls: pki.foreign });
    stranger.transport.setPeer(2, '127.0.0.1', b.transport.port);
    stranger.transport.send([app(1, 2, 1)]);
    await waitFor(() => b.logger.has('warn', /certificate was not accepted \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/), 'the refusal in the server log', 5000, () => b.logger.dump());
    await waitFor(() => stranger.unreachable.includes(2), 'the stranger to see the refusal');
    expect(stranger.logger.has('warn', /may not accept this node's certificate/)).toBe(true);
    expect(stranger.transport.peerStats(2)!.connected).toBe(false);
    expect(b.received).toHaveLength(0);
    expect(b.transport.connectedInbound()).toEqual([]);
    await assertServes(b);
  });

  test('a node refuses a server whose certificate comes from another CA', async () => {
    const a = await tlsNode(1);
    const stranger = await h.node(2, { tls: pki.foreign });
    a.transport.setPeer(2, '127.0.0.1', stranger.transport.port);
    a.transport.send([app(1, 2, 1)]);
    await waitFor(() => a.unreachable.includes(2), 'the dial to fail');
    expect(a.logger.has('warn', /cannot connect to peer 2/)).toBe(true);
    expect(stranger.received).toHaveLength(0);
  });

  test('a plain-TCP peer is refused by a TLS server', async () => {
    const b = await tlsNode(2);
    const plain = await h.node(1);
    plain.transport.setPeer(2, '127.0.0.1', b.transport.port);
    plain.transport.send([app(1, 2, 1)]);
    await waitFor(() => b.logger.has('warn', /TLS handshake failed \(wrong version number\); the peer does not speak TLS/), 'the refusal in the server log', 5000, () => b.logger.dump());
    await waitFor(() => plain.unreachable.includes(2), 'the plain peer to see the close');
    expect(plain.logger.has('warn', /it may expect TLS/)).toBe(true);
    expect(b.received).toHaveLength(0);
    const raw = await h.rawConnect(b.transport.port);
    raw.write(Buffer.from('not TLS at all\r\n'));
    await waitFor(() => raw.closed, 'the raw connection to be closed');
    await assertServes(b);
  });

  test('start fails with a clear error when a certificate file is missing', async () => {
    await expect(h.node(1, { tls: { ...pki.node('node1'), certFile: `${pki.dir}/missing.crt` } })).rejects.toThrow(
      /cannot read the TLS certificate file .*missing\.crt: .*ENOENT/,
    );
  });
});
