import { SeededRng } from '../../../agent/raft/rng';
import { EntryType, MessageType, emptyMessage } from '../../../agent/raft/types';
import { CodecError, decodeMessage, encodeMessageInto, encodedMessageSize } from '../../../agent/transport/codec';
import { FRAME_HEADER_BYTES, FrameKind, encodeMessageFrame } from '../../../agent/transport/frame';
import { WIRE_TYPES, normalize, randomMessage } from './helpers';

function roundTrip(m: ReturnType<typeof randomMessage>) {
  const frame = encodeMessageFrame(m);
  expect(frame.length).toBe(FRAME_HEADER_BYTES + encodedMessageSize(m));
  expect(frame.readUInt32BE(0)).toBe(frame.length - 4);
  expect(frame[4]).toBe(FrameKind.Message);
  return decodeMessage(frame.subarray(FRAME_HEADER_BYTES));
}

describe('message codec', () => {
  test.each(WIRE_TYPES.map((t) => [MessageType[t], t]))('round-trips every field of a %s message', (_name, type) => {
    const m = emptyMessage(type, 2, 1, 7);
    m.logTerm = 6;
    m.index = 2 ** 40 + 3;
    m.commit = Number.MAX_SAFE_INTEGER;
    m.reject = true;
    m.rejectHint = 0xffffffff + 1;
    m.entries = [
      { term: 5, index: 11, type: EntryType.Normal, data: new Uint8Array([1, 2, 3]) },
      { term: 6, index: 12, type: EntryType.ConfChange, data: new Uint8Array(0) },
    ];
    m.context = new Uint8Array([9, 8, 7]);
    m.snapshot = {
      metadata: { index: 10, term: 5, confState: { voters: [1, 2, 3], learners: [4] } },
      data: new Uint8Array([42, 43]),
    };
    expect(normalize(roundTrip(m))).toEqual(normalize(m));
  });

  test('keeps null context and snapshot apart from empty ones', () => {
    const m = emptyMessage(MessageType.Heartbeat, 2, 1, 1);
    const back = roundTrip(m);
    expect(back.context).toBeNull();
    expect(back.snapshot).toBeNull();
    m.context = new Uint8Array(0);
    m.snapshot = { metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: new Uint8Array(0) };
    const back2 = roundTrip(m);
    expect(back2.context).toEqual(new Uint8Array(0));
    expect(back2.snapshot).not.toBeNull();
    expect(back2.snapshot!.data.length).toBe(0);
  });

  test('round-trips 2000 random messages (seeded)', () => {
    const rng = new SeededRng(20240601);
    for (let i = 0; i < 2000; i++) {
      const m = randomMessage(rng);
      expect(normalize(roundTrip(m))).toEqual(normalize(m));
    }
  });

  test('encodes at an offset inside a larger buffer and writes exactly the computed size', () => {
    const rng = new SeededRng(5);
    const m = randomMessage(rng, MessageType.App);
    const size = encodedMessageSize(m);
    const buf = Buffer.alloc(size + 20, 0xee);
    expect(encodeMessageInto(m, buf, 10)).toBe(10 + size);
    expect(buf[9]).toBe(0xee);
    expect(buf[10 + size]).toBe(0xee);
    expect(normalize(decodeMessage(buf.subarray(10, 10 + size)))).toEqual(normalize(m));
  });

  test('decoded byte fields are views of the frame, not copies', () => {
    const m = emptyMessage(MessageType.App, 2, 1, 1);
    m.entries = [{ term: 1, index: 1, type: EntryType.Normal, data: new Uint8Array(1000).fill(3) }];
    const frame = encodeMessageFrame(m);
    const back = decodeMessage(frame.subarray(FRAME_HEADER_BYTES));
    expect(back.entries[0].data.buffer).toBe(frame.buffer);
    expect(back.entries[0].data).toBeInstanceOf(Uint8Array);
  });

  test('refuses to encode local message types and out-of-range numbers', () => {
    expect(() => encodeMessageFrame(emptyMessage(MessageType.Hup, 2, 1))).toThrow(/local/);
    expect(() => encodeMessageFrame(emptyMessage(MessageType.Unreachable, 2, 1))).toThrow(/local/);
    const neg = emptyMessage(MessageType.App, 2, 1, -1);
    expect(() => encodeMessageFrame(neg)).toThrow(/term -1/);
    const frac = emptyMessage(MessageType.App, 2, 1);
    frac.index = 1.5;
    expect(() => encodeMessageFrame(frac)).toThrow(/index 1.5/);
    const big = emptyMessage(MessageType.App, 2, 1);
    big.commit = 2 ** 53;
    expect(() => encodeMessageFrame(big)).toThrow(/commit/);
    expect(() => encodeMessageFrame(emptyMessage(MessageType.App, 2 ** 32, 1))).toThrow(/to 4294967296/);
  });

  test('every truncation of a valid message is a CodecError', () => {
    const m = randomMessage(new SeededRng(9), MessageType.Snap);
    const body = encodeMessageFrame(m).subarray(FRAME_HEADER_BYTES);
    for (let len = 0; len < body.length; len++) {
      expect(() => decodeMessage(body.subarray(0, len))).toThrow(CodecError);
    }
  });

  test('rejects trailing bytes, unknown flags, local types and integers beyond 2^53', () => {
    const body = Buffer.from(encodeMessageFrame(emptyMessage(MessageType.Vote, 2, 1, 3)).subarray(FRAME_HEADER_BYTES));
    expect(() => decodeMessage(Buffer.concat([body, Buffer.from([0])]))).toThrow(/unexpected bytes/);
    const flags = Buffer.from(body);
    flags[1] = 0x80;
    expect(() => decodeMessage(flags)).toThrow(/flags/);
    const local = Buffer.from(body);
    local[0] = MessageType.Hup;
    expect(() => decodeMessage(local)).toThrow(/local/);
    const unknown = Buffer.from(body);
    unknown[0] = 200;
    expect(() => decodeMessage(unknown)).toThrow(/unknown/);
    const huge = Buffer.from(body);
    huge.writeUInt32BE(0x200000, 10); // high word of term
    expect(() => decodeMessage(huge)).toThrow(/2\^53/);
  });

  test('a lying entry count is refused before anything is allocated for it', () => {
    const body = Buffer.from(encodeMessageFrame(emptyMessage(MessageType.App, 2, 1, 3)).subarray(FRAME_HEADER_BYTES));
    body.writeUInt32BE(0xffffffff, 50); // entry count
    expect(() => decodeMessage(body)).toThrow(/count 4294967295 does not fit/);
  });

  test('random corruption never throws anything but CodecError (seeded fuzz)', () => {
    const rng = new SeededRng(77);
    let decoded = 0;
    for (let i = 0; i < 3000; i++) {
      const body = Buffer.from(encodeMessageFrame(randomMessage(rng)).subarray(FRAME_HEADER_BYTES));
      const flips = 1 + rng.intn(4);
      for (let k = 0; k < flips; k++) body[rng.intn(body.length)] = rng.intn(256);
      try {
        decodeMessage(body);
        decoded++;
      } catch (err) {
        expect(err).toBeInstanceOf(CodecError);
      }
    }
    // Some corruptions hit data bytes and still decode; most hit structure. Both paths ran.
    expect(decoded).toBeGreaterThan(0);
    expect(decoded).toBeLessThan(3000);
  });
});
