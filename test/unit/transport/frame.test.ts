import { SeededRng } from '../../../agent/raft/rng';
import { EntryType, MessageType, emptyMessage } from '../../../agent/raft/types';
import { Backoff } from '../../../agent/transport/backoff';
import { decodeMessage } from '../../../agent/transport/codec';
import { FrameDecoder, FrameError, FrameKind, encodeFrame, encodeMessageFrame } from '../../../agent/transport/frame';
import {
  MAGIC,
  PROTOCOL_VERSION,
  WelcomeStatus,
  decodeHello,
  decodeSnapshotAck,
  decodeWelcome,
  encodeHello,
  encodeSnapshotAck,
  encodeWelcome,
} from '../../../agent/transport/handshake';
import { LogThrottle } from '../../../agent/transport/logger';
import { normalize, randomMessage } from './helpers';

describe('FrameDecoder', () => {
  test('reassembles frames from chunks of every size, in order (seeded)', () => {
    const rng = new SeededRng(3);
    const messages = Array.from({ length: 200 }, () => randomMessage(rng));
    const stream = Buffer.concat(messages.map(encodeMessageFrame));
    for (const maxChunk of [1, 3, 7, 64, 1000, stream.length]) {
      const dec = new FrameDecoder(1 << 20);
      const out = [];
      for (let off = 0; off < stream.length; ) {
        const n = 1 + rng.intn(maxChunk);
        for (const f of dec.push(stream.subarray(off, off + n))) {
          expect(f.kind).toBe(FrameKind.Message);
          out.push(decodeMessage(f.body));
        }
        off += n;
      }
      expect(dec.bufferedBytes).toBe(0);
      expect(out.map(normalize)).toEqual(messages.map(normalize));
    }
  });

  test('a frame that spans chunks gets a buffer of its own that later input never rewrites', () => {
    const dec = new FrameDecoder(1 << 20);
    const mk = (fill: number) => {
      const m = emptyMessage(MessageType.App, 2, 1, 1);
      m.entries = [{ term: 1, index: 1, type: EntryType.Normal, data: new Uint8Array(100).fill(fill) }];
      return encodeMessageFrame(m);
    };
    const a = mk(0xaa);
    const b = mk(0xbb);
    // Both frames arrive split in two, so both are reassembled.
    const first = [...dec.push(a.subarray(0, 50)), ...dec.push(a.subarray(50))];
    const decodedA = decodeMessage(first[0].body);
    const second = [...dec.push(b.subarray(0, 50)), ...dec.push(b.subarray(50))];
    const decodedB = decodeMessage(second[0].body);
    expect(Array.from(decodedA.entries[0].data)).toEqual(new Array(100).fill(0xaa));
    expect(Array.from(decodedB.entries[0].data)).toEqual(new Array(100).fill(0xbb));
    // Small buffers may share Node's allocation pool, but never the same bytes.
    const [x, y] = [first[0].body, second[0].body];
    const disjoint = x.buffer !== y.buffer || x.byteOffset + x.length <= y.byteOffset || y.byteOffset + y.length <= x.byteOffset;
    expect(disjoint).toBe(true);
  });

  test('refuses an oversized frame from its length prefix alone', () => {
    const dec = new FrameDecoder(1000);
    const header = Buffer.alloc(5);
    header.writeUInt32BE(1001, 0);
    header[4] = FrameKind.Message;
    expect(() => dec.push(header.subarray(0, 4))).toThrow(/1001 bytes exceeds the limit of 1000/);
    expect(() => dec.push(Buffer.alloc(1))).toThrow(FrameError);
  });

  test('refuses zero-length frames and unknown kinds', () => {
    expect(() => new FrameDecoder(100).push(Buffer.from([0, 0, 0, 0]))).toThrow(/length 0/);
    expect(() => new FrameDecoder(100).push(Buffer.from([0, 0, 0, 1, 99]))).toThrow(/unknown frame kind 99/);
  });

  test('a frame exactly at the limit is accepted', () => {
    const f = encodeFrame(FrameKind.Message, Buffer.alloc(99));
    expect(new FrameDecoder(100).push(f)).toHaveLength(1);
  });
});

describe('handshake frames', () => {
  const body = (frame: Buffer) => {
    const frames = new FrameDecoder(4096).push(frame);
    expect(frames).toHaveLength(1);
    return frames[0];
  };

  test('hello and welcome round-trip', () => {
    const h = body(encodeHello({ nodeId: 3, toNodeId: 7, clusterId: 'prod-é', advertise: '10.0.0.3:7001' }));
    expect(h.kind).toBe(FrameKind.Hello);
    expect(decodeHello(h.body)).toEqual({
      version: PROTOCOL_VERSION,
      hello: { version: PROTOCOL_VERSION, nodeId: 3, toNodeId: 7, clusterId: 'prod-é', advertise: '10.0.0.3:7001' },
    });
    const w = body(encodeWelcome({ status: WelcomeStatus.WrongCluster, nodeId: 7, clusterId: 'x', reason: 'no' }));
    expect(w.kind).toBe(FrameKind.Welcome);
    expect(decodeWelcome(w.body).welcome).toEqual({
      version: PROTOCOL_VERSION,
      status: WelcomeStatus.WrongCluster,
      nodeId: 7,
      clusterId: 'x',
      reason: 'no',
    });
    expect(decodeSnapshotAck(body(encodeSnapshotAck(2 ** 40 + 1)).body)).toBe(2 ** 40 + 1);
  });

  test('a refusal for a removed node carries the index that removed it', () => {
    const removal = { index: 2 ** 40 + 5, term: 7 };
    const w = body(encodeWelcome({ status: WelcomeStatus.Removed, nodeId: 1, clusterId: 'x', reason: 'gone', removal }));
    expect(decodeWelcome(w.body).welcome).toEqual({ version: PROTOCOL_VERSION, status: WelcomeStatus.Removed, nodeId: 1, clusterId: 'x', reason: 'gone', removal });
    // Other refusals carry no index: a trailing one is a malformed welcome.
    const other = body(encodeWelcome({ status: WelcomeStatus.WrongNode, nodeId: 1, clusterId: 'x', reason: 'no', removal }));
    expect(decodeWelcome(other.body).welcome).not.toHaveProperty('removal');
    expect(() => decodeWelcome(Buffer.concat([other.body, Buffer.alloc(16)]))).toThrow(/unexpected bytes/);
  });

  test('another protocol version is reported without parsing the rest', () => {
    const b = Buffer.alloc(6);
    b.writeUInt32BE(MAGIC, 0);
    b.writeUInt16BE(PROTOCOL_VERSION + 1, 4);
    expect(decodeHello(b)).toEqual({ version: PROTOCOL_VERSION + 1, hello: null });
  });

  test('bytes without the magic are not a pgraft peer', () => {
    expect(() => decodeHello(Buffer.from('GET / HTTP/1.1\r\n'))).toThrow(/not a pgraft agent/);
  });
});

describe('Backoff', () => {
  test('grows exponentially with jitter, is capped, and resets', () => {
    const b = new Backoff({ initialMs: 50, maxMs: 1000 }, new SeededRng(1));
    const delays = Array.from({ length: 10 }, () => b.next());
    const steps = [50, 100, 200, 400, 800, 1000, 1000, 1000, 1000, 1000];
    delays.forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(steps[i] / 2);
      expect(d).toBeLessThanOrEqual(steps[i]);
    });
    expect(new Set(delays.slice(5)).size).toBeGreaterThan(1); // jitter, not lockstep
    b.reset();
    expect(b.next()).toBeLessThanOrEqual(50);
    b.toMax();
    expect(b.next()).toBeGreaterThanOrEqual(500);
  });
});

describe('LogThrottle', () => {
  test('logs once per interval per key, and again right after a reset', () => {
    let now = 0;
    const t = new LogThrottle(1000, () => now);
    expect(t.shouldLog('a')).toBe(true);
    expect(t.shouldLog('a')).toBe(false);
    expect(t.shouldLog('b')).toBe(true);
    now = 1000;
    expect(t.shouldLog('a')).toBe(true);
    t.reset('a');
    expect(t.shouldLog('a')).toBe(true);
  });
});
