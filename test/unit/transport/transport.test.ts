import * as net from 'net';
import { MessageType, emptyMessage } from '../../../agent/raft/types';
import { FrameDecoder, FrameKind, encodeFrame, encodeMessageFrame } from '../../../agent/transport/frame';
import { MAGIC, PROTOCOL_VERSION, WelcomeStatus, decodeWelcome, encodeHello, encodeWelcome } from '../../../agent/transport/handshake';
import { PeerTransport } from '../../../agent/transport/transport';
import { Harness, Node, RecordingLogger, app, normalize, snap, waitFor } from './helpers';

const h = new Harness();
afterEach(() => h.closeAll());

/** Two nodes that know each other's address. */
async function pair(extra1 = {}, extra2 = {}): Promise<[Node, Node]> {
  const a = await h.node(1, extra1);
  const b = await h.node(2, extra2);
  a.transport.setPeer(2, '127.0.0.1', b.transport.port);
  b.transport.setPeer(1, '127.0.0.1', a.transport.port);
  return [a, b];
}

/** Sends a probe until the peer has it: proves the listener still serves good peers. */
async function assertServes(target: Node): Promise<void> {
  const good = await h.node(9);
  good.transport.setPeer(target.id, '127.0.0.1', target.transport.port);
  const before = target.received.length;
  good.transport.send([app(9, target.id, 4242)]);
  await waitFor(() => target.received.slice(before).some((m) => m.from === 9 && m.index === 4242), 'a good peer to get through');
}

describe('PeerTransport', () => {
  test('a dialing peer tells where it listens; its disconnection is reported', async () => {
    const identified: [number, string][] = [];
    const disconnected: number[] = [];
    const b = await h.node(2, {
      onPeerIdentified: (peer, advertise) => identified.push([peer, advertise]),
      onPeerDisconnected: (peer) => disconnected.push(peer),
    });
    const a = await h.node(1);
    a.transport.setPeer(2, '127.0.0.1', b.transport.port);
    a.transport.send([app(1, 2, 1)]);
    await waitFor(() => identified.length === 1, 'the peer to identify itself');
    // Node 2 learns how to reach node 1 without being told: enough to answer it.
    expect(identified[0]).toEqual([1, `127.0.0.1:${a.transport.port}`]);
    expect(disconnected).toEqual([]);
    await a.transport.stop();
    await waitFor(() => disconnected.length === 1, 'the disconnection to be reported');
    expect(disconnected).toEqual([1]);
  });

  test('two transports exchange messages both ways, every field intact', async () => {
    const [a, b] = await pair();
    const toB = app(1, 2, 5);
    toB.context = new Uint8Array([1, 2]);
    const toA = emptyMessage(MessageType.AppResp, 1, 2, 3);
    toA.reject = true;
    toA.rejectHint = 4;
    a.transport.send([toB]);
    b.transport.send([toA]);
    await waitFor(() => a.received.length === 1 && b.received.length === 1, 'one message each way');
    expect(normalize(b.received[0])).toEqual(normalize(toB));
    expect(normalize(a.received[0])).toEqual(normalize(toA));
    expect(a.transport.peerStats(2)!.connected).toBe(true);
    expect(b.transport.connectedInbound()).toEqual([1]);
  });

  test('messages to one peer arrive in the order sent, across many send calls', async () => {
    const [a, b] = await pair();
    const total = 3000;
    for (let i = 0; i < total; i += 100) {
      a.transport.send(Array.from({ length: 100 }, (_, k) => app(1, 2, i + k, 200)));
    }
    await waitFor(() => b.received.length === total, `${total} messages`, 10000, () => `got ${b.received.length}`);
    expect(b.received.map((m) => m.index)).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(a.transport.peerStats(2)!.droppedMessages).toBe(0);
  });

  test('messages queued before the peer is up are delivered once it listens', async () => {
    const a = await h.node(1);
    const port = await h.deadPort();
    a.transport.setPeer(2, '127.0.0.1', port);
    a.transport.send([app(1, 2, 1)]);
    await waitFor(() => a.unreachable.includes(2), 'the failed dial to be reported');
    const b = await h.node(2, { listenPort: port });
    await waitFor(() => b.received.length === 1, 'the queued message after the peer came up');
    expect(b.received[0].index).toBe(1);
  });

  test('a peer that connects to this node is redialed at once, not after the back-off', async () => {
    const slow = { backoff: { initialMs: 8000, maxMs: 8000 } };
    const a = await h.node(1, slow);
    const port = await h.deadPort();
    a.transport.setPeer(2, '127.0.0.1', port);
    a.transport.send([app(1, 2, 1)]);
    await waitFor(() => a.unreachable.includes(2), 'the failed dial to be reported');
    // Node 2 comes up and dials node 1: node 1's next redial would be 4 to 8 s away.
    const b = await h.node(2, { listenPort: port });
    b.transport.setPeer(1, '127.0.0.1', a.transport.port);
    b.transport.send([app(2, 1, 7)]);
    await waitFor(() => b.received.length === 1, 'the queued message, well within the back-off', 3000);
    expect(b.received[0].index).toBe(1);
  });

  test('reconnects after the peer restarts, reporting it unreachable meanwhile', async () => {
    const [a, b] = await pair();
    a.transport.send([app(1, 2, 1)]);
    await waitFor(() => b.received.length === 1, 'first message');
    const port = b.transport.port;
    await b.transport.stop();
    await waitFor(() => a.unreachable.includes(2), 'peer 2 reported unreachable after it stopped');
    expect(a.transport.peerStats(2)!.connected).toBe(false);
    const b2 = await h.node(2, { listenPort: port });
    // The first message after the restart may have been written into the dying connection;
    // keep sending until one arrives over the new one.
    let n = 100;
    await waitFor(
      () => {
        a.transport.send([app(1, 2, n++)]);
        return b2.received.length > 0;
      },
      'a message over the new connection',
      5000,
    );
    expect(a.transport.peerStats(2)!.connected).toBe(true);
    expect(a.logger.has('info', /connected to peer 2 again/)).toBe(true);
  });

  test('a peer with another cluster id is refused: nothing delivered, connection closed, logged on both sides', async () => {
    const b = await h.node(2);
    const intruder = await h.node(1, {}, 'other-cluster');
    intruder.transport.setPeer(2, '127.0.0.1', b.transport.port);
    intruder.transport.send([app(1, 2, 1)]);
    await waitFor(() => b.logger.has('warn', /belongs to cluster "other-cluster".*not joined/), 'the refusal in the log', 5000, () => b.logger.dump());
    await waitFor(() => intruder.logger.has('error', /refused the connection.*WrongCluster/), 'the refusal in the dialer log', 5000, () => intruder.logger.dump());
    await waitFor(() => b.transport.connectedInbound().length === 0 && intruder.unreachable.includes(2), 'the connection to be closed');
    expect(b.received).toHaveLength(0);
    expect(intruder.transport.peerStats(2)!.connected).toBe(false);
  });

  test('a peer speaking another protocol version is refused with a clear log line', async () => {
    const b = await h.node(2);
    const c = await h.rawConnect(b.transport.port);
    const body = Buffer.alloc(6);
    body.writeUInt32BE(MAGIC, 0);
    body.writeUInt16BE(PROTOCOL_VERSION + 1, 4);
    c.write(encodeFrame(FrameKind.Hello, body));
    await waitFor(() => c.closed, 'the server to close the connection');
    expect(b.logger.has('warn', new RegExp(`speaks protocol version ${PROTOCOL_VERSION + 1}; this agent speaks version ${PROTOCOL_VERSION}`))).toBe(true);
    const frames = new FrameDecoder(4096).push(c.received());
    expect(frames).toHaveLength(1);
    expect(decodeWelcome(frames[0].body).welcome!.status).toBe(WelcomeStatus.WrongVersion);
    await assertServes(b);
  });

  test('the dialer refuses an agent that is not the node it dialed', async () => {
    const a = await h.node(1);
    const b = await h.node(2);
    a.transport.setPeer(3, '127.0.0.1', b.transport.port); // node 3's address points at node 2
    a.transport.send([app(1, 3, 1)]);
    await waitFor(() => b.logger.has('warn', /dialed this agent as node 3, but this is node 2/), 'the refusal');
    await waitFor(() => a.unreachable.includes(3), 'node 3 reported unreachable');
    expect(b.received).toHaveLength(0);
  });

  test('garbage bytes close that connection only; the server keeps serving good peers', async () => {
    const b = await h.node(2);
    const c = await h.rawConnect(b.transport.port);
    c.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await waitFor(() => c.closed, 'the garbage connection to be closed');
    expect(b.logger.has('warn', /closing the peer connection from 127\.0\.0\.1:\d+: /)).toBe(true);
    await assertServes(b);
    expect(b.received.every((m) => m.from === 9)).toBe(true);
  });

  test('an oversized frame after a valid handshake closes that connection; the server keeps serving', async () => {
    const b = await h.node(2, { maxFrameBytes: 64 * 1024 });
    const c = await h.rawConnect(b.transport.port);
    c.write(encodeHello({ nodeId: 5, toNodeId: 2, clusterId: 'test-cluster', advertise: '127.0.0.1:1' }));
    await waitFor(() => b.transport.connectedInbound().includes(5), 'the handshake to be accepted');
    const header = Buffer.alloc(5);
    header.writeUInt32BE(64 * 1024 + 1, 0);
    header[4] = FrameKind.Message;
    c.write(header);
    await waitFor(() => c.closed, 'the connection to be closed');
    expect(b.logger.has('warn', /exceeds the limit of 65536 bytes/)).toBe(true);
    await assertServes(b);
  });

  test('a malformed message, or one that lies about its sender, closes that connection', async () => {
    const b = await h.node(2);
    for (const bad of [
      encodeFrame(FrameKind.Message, Buffer.from([MessageType.App, 0, 1, 2])),
      encodeMessageFrame(app(7, 2, 1)),
    ]) {
      const c = await h.rawConnect(b.transport.port);
      c.write(encodeHello({ nodeId: 5, toNodeId: 2, clusterId: 'test-cluster', advertise: '127.0.0.1:1' }));
      c.write(bad);
      await waitFor(() => c.closed, 'the connection to be closed');
    }
    expect(b.logger.has('warn', /truncated/)).toBe(true);
    expect(b.logger.has('warn', /claims to come from node 7 on node 5's connection/)).toBe(true);
    expect(b.received).toHaveLength(0);
    await assertServes(b);
  });

  test('a peer that never completes its handshake is dropped after the timeout', async () => {
    const b = await h.node(2, { handshakeTimeoutMs: 150 });
    const c = await h.rawConnect(b.transport.port);
    c.write(Buffer.from([0, 0])); // half a length prefix, then silence
    await waitFor(() => c.closed, 'the silent connection to be dropped', 3000);
    expect(b.logger.has('warn', /sent no valid handshake within 150 ms/)).toBe(true);
  });

  test('a throwing onMessage callback is logged and does not break the connection', async () => {
    let calls = 0;
    const [a, b] = await pair({}, {
      onMessage: () => {
        calls++;
        if (calls === 1) throw new Error('node bug');
      },
    });
    a.transport.send([app(1, 2, 1), app(1, 2, 2)]);
    await waitFor(() => calls === 2, 'both messages to reach the callback');
    expect(b.logger.has('error', /onMessage callback threw/)).toBe(true);
  });

  test('to a dead peer: bounded queue drops, reports unreachable, and stays under its caps', async () => {
    const maxQueueBytes = 64 * 1024;
    const maxQueueMessages = 100;
    const a = await h.node(1, { maxQueueBytes, maxQueueMessages });
    a.transport.setPeer(2, '127.0.0.1', await h.deadPort());
    let maxSeenBytes = 0;
    let maxSeenCount = 0;
    for (let i = 0; i < 2000; i++) {
      a.transport.send([app(1, 2, i, 1000)]);
      const s = a.transport.peerStats(2)!;
      maxSeenBytes = Math.max(maxSeenBytes, s.queuedBytes + s.socketBytes);
      maxSeenCount = Math.max(maxSeenCount, s.queuedMessages);
    }
    const s = a.transport.peerStats(2)!;
    expect(maxSeenBytes).toBeLessThanOrEqual(maxQueueBytes);
    expect(maxSeenCount).toBeLessThanOrEqual(maxQueueMessages);
    expect(s.droppedMessages).toBeGreaterThan(1900);
    expect(a.unreachable.filter((p) => p === 2).length).toBeGreaterThan(1900);
    expect(a.logger.has('warn', /send queue to peer 2 is full/)).toBe(true);
  });

  test('to a peer that stops reading: memory stays bounded and drops are reported', async () => {
    // A fake peer that completes the handshake and then never reads again.
    const server = h.trackServer(
      net.createServer((sock) => {
        h.trackSocket(sock);
        sock.once('data', () => {
          sock.write(encodeWelcome({ status: WelcomeStatus.Accepted, nodeId: 2, clusterId: 'test-cluster', reason: '' }));
          sock.pause();
        });
      }),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const maxQueueBytes = 2 * 1024 * 1024;
    const a = await h.node(1, { maxQueueBytes, maxQueueMessages: 100000 });
    a.transport.setPeer(2, '127.0.0.1', (server.address() as net.AddressInfo).port);
    await waitFor(() => a.transport.peerStats(2)!.connected, 'the handshake with the fake peer');
    const payload = 64 * 1024;
    let i = 0;
    // Keep writing until the kernel buffers are full and the queue overflows.
    await waitFor(
      () => {
        for (let k = 0; k < 16; k++) a.transport.send([app(1, 2, i++, payload)]);
        const s = a.transport.peerStats(2)!;
        expect(s.queuedBytes).toBeLessThanOrEqual(maxQueueBytes);
        expect(s.socketBytes).toBeLessThanOrEqual(1024 * 1024 + payload + 100);
        return s.droppedMessages > 0;
      },
      'the queue to overflow',
      20000,
    );
    expect(a.unreachable).toContain(2);
  });

  test('snapshot delivery is confirmed by the receiver', async () => {
    const [a, b] = await pair();
    a.transport.send([snap(1, 2, 77, 3 * 1024 * 1024)]);
    await waitFor(() => a.snapshotStatus.length === 1, 'the snapshot status');
    expect(a.snapshotStatus).toEqual([{ peer: 2, ok: true }]);
    expect(b.received).toHaveLength(1);
    expect(b.received[0].snapshot!.metadata.index).toBe(77);
    expect(b.received[0].snapshot!.data.length).toBe(3 * 1024 * 1024);
  });

  test('snapshot to a dead peer fails; a second one while the first is pending is refused', async () => {
    const a = await h.node(1);
    const port = await h.deadPort();
    a.transport.setPeer(2, '127.0.0.1', port);
    a.transport.send([snap(1, 2, 5), snap(1, 2, 6)]);
    // The second is refused at once; the first fails with the dial.
    await waitFor(() => a.snapshotStatus.length === 2, 'two snapshot statuses');
    expect(a.snapshotStatus).toEqual([
      { peer: 2, ok: false },
      { peer: 2, ok: false },
    ]);
    expect(a.transport.peerStats(2)!.queuedSnapshotBytes).toBe(0);
  });

  test('a snapshot over the frame limit is refused at the sender', async () => {
    const [a] = await pair({ maxFrameBytes: 1024 * 1024 });
    a.transport.send([snap(1, 2, 9, 2 * 1024 * 1024)]);
    expect(a.snapshotStatus).toEqual([{ peer: 2, ok: false }]);
    expect(a.logger.has('error', /exceeds the frame limit/)).toBe(true);
  });

  test('a message to an unknown peer is dropped and the peer reported unreachable', async () => {
    const a = await h.node(1);
    a.transport.send([app(1, 5, 1), app(1, 5, 2)]);
    expect(a.unreachable).toEqual([5]);
  });

  test('changing a peer address moves the connection', async () => {
    const a = await h.node(1);
    const b = await h.node(2);
    a.transport.setPeer(2, '127.0.0.1', await h.deadPort());
    a.transport.send([app(1, 2, 1)]);
    await waitFor(() => a.unreachable.includes(2), 'the dead address to fail');
    a.transport.setPeer(2, '127.0.0.1', b.transport.port);
    await waitFor(() => b.received.length > 0, 'delivery at the new address');
  });

  test('removePeer closes the stream and forgets the peer', async () => {
    const [a, b] = await pair();
    a.transport.send([app(1, 2, 1)]);
    await waitFor(() => b.received.length === 1, 'delivery');
    a.transport.removePeer(2);
    expect(a.transport.peerStats(2)).toBeUndefined();
    await waitFor(() => b.transport.connectedInbound().length === 0, 'the inbound side to see the close');
    a.transport.send([app(1, 2, 2)]);
    expect(a.unreachable).toContain(2);
  });

  test('start fails with a clear error when the port is taken', async () => {
    const a = await h.node(1);
    const t = h.trackTransport(new PeerTransport({
      nodeId: 2,
      clusterId: 'test-cluster',
      listenHost: '127.0.0.1',
      listenPort: a.transport.port,
      logger: new RecordingLogger(),
      onMessage: () => undefined,
      onUnreachable: () => undefined,
      onSnapshotStatus: () => undefined,
    }));
    await expect(t.start()).rejects.toThrow(/cannot listen for peer traffic on 127\.0\.0\.1:\d+: .*another process holds the port/);
  });

  test('stop during start leaves nothing listening', async () => {
    const port = await h.deadPort();
    const t = h.trackTransport(new PeerTransport({
      nodeId: 1,
      clusterId: 'test-cluster',
      listenHost: '127.0.0.1',
      listenPort: port,
      logger: new RecordingLogger(),
      onMessage: () => undefined,
      onUnreachable: () => undefined,
      onSnapshotStatus: () => undefined,
    }));
    const starting = t.start();
    await t.stop();
    await expect(starting).rejects.toThrow(/stopped while it was starting/);
    const probe = net.connect({ host: '127.0.0.1', port });
    h.trackSocket(probe);
    const refused = await new Promise<boolean>((resolve) => {
      probe.once('connect', () => resolve(false));
      probe.once('error', () => resolve(true));
    });
    expect(refused).toBe(true);
  });

  test('setPeer refuses addresses that can never work', async () => {
    const a = await h.node(1);
    expect(() => a.transport.setPeer(1, '127.0.0.1', 7001)).toThrow(/this node/);
    expect(() => a.transport.setPeer(2, '127.0.0.1', 70000)).toThrow(/port must be from 1 to 65535/);
    expect(() => a.transport.setPeer(2, '', 7001)).toThrow(/host/);
    expect(() => a.transport.setPeer(0, '127.0.0.1', 7001)).toThrow(/node id/);
  });

  test('stop closes every connection and no callback runs afterwards', async () => {
    const [a, b] = await pair();
    a.transport.send([app(1, 2, 1)]);
    await waitFor(() => b.received.length === 1, 'delivery');
    await a.transport.stop();
    const reported = a.unreachable.length;
    await waitFor(() => b.transport.connectedInbound().length === 0, 'the peer to see the close');
    a.transport.send([app(1, 2, 2)]);
    expect(a.unreachable.length).toBe(reported);
  });
});
