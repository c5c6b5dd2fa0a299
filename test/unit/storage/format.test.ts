import { SeededRng } from '../../../agent/raft/rng';
import { EntryType } from '../../../agent/raft/types';
import { crc32, crc32Portable } from '../../../agent/storage/crc32';
import {
  decodeHardState,
  decodeSegmentHeader,
  decodeSnapshot,
  encodeHardState,
  encodeRecord,
  entriesInRecord,
  encodeSegmentHeader,
  encodeSnapshot,
  imageOf,
  readFrame,
} from '../../../agent/storage/format';
import { parseSegmentName, parseSnapshotName, segmentName, snapshotName } from '../../../agent/storage/layout';
import { ent, plain } from './helpers';

describe('storage formats', () => {
  test('CRC-32 matches the standard check value, and the portable table agrees with zlib', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32Portable(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32Portable(new Uint8Array(0))).toBe(0);
    // Continued over a second piece, as snapshot files are checksummed; also past an empty one.
    const whole = crc32(Buffer.from('hello world'));
    expect(crc32(Buffer.from('world'), crc32(Buffer.from('hello ')))).toBe(whole);
    expect(crc32Portable(Buffer.from('world'), crc32Portable(Buffer.from('hello ')))).toBe(whole);
    expect(crc32(Buffer.from(new ArrayBuffer(0), 0, 0), whole)).toBe(whole);
    const rng = new SeededRng(7);
    for (let n = 0; n < 50; n++) {
      const data = Buffer.from(Array.from({ length: rng.intn(3000) }, () => rng.intn(256)));
      expect(crc32Portable(data)).toBe(crc32(data));
    }
  });

  test('entries kept from a record are views into it, not into the buffers they arrived in', () => {
    const arrived = Buffer.alloc(64 * 1024); // a socket read holding far more than these entries
    arrived.write('first', 100);
    arrived.write('second!', 5000);
    const entries = [
      { index: 7, term: 2, type: EntryType.Normal, data: arrived.subarray(100, 105) },
      { index: 8, term: 2, type: EntryType.ConfChange, data: arrived.subarray(5000, 5007) },
      { index: 9, term: 3, type: EntryType.Normal, data: new Uint8Array(0) },
    ];
    const record = encodeRecord(1, 0, entries);
    const kept = entriesInRecord(record, entries);
    expect(plain(kept)).toEqual(plain(entries));
    for (const e of kept) expect(e.data.buffer).toBe(record.buffer);
    // The record is an allocation of its own, no larger than itself.
    expect(record.buffer.byteLength).toBe(record.length);
  });

  test('a record holds its number, the commit index and the entries, and survives a round trip', () => {
    const entries = [ent(41, 3), { index: 42, term: 4, type: EntryType.ConfChange, data: new Uint8Array([1, 2]) }, ent(43, 4, '')];
    const buf = encodeRecord(9, 40, entries);
    const frame = readFrame(buf, 0);
    if (!frame.ok) throw new Error(frame.reason);
    expect(frame.end).toBe(buf.length);
    expect(frame.record.record).toBe(9);
    expect(frame.record.commit).toBe(40);
    expect(plain(frame.record.entries)).toEqual(plain(entries));
  });

  test('indexes and terms up to 2^53-1 are stored exactly; larger values are refused', () => {
    const big = Number.MAX_SAFE_INTEGER;
    const frame = readFrame(encodeRecord(big, big - 1, [ent(big - 2, big)]), 0);
    if (!frame.ok) throw new Error(frame.reason);
    expect([frame.record.record, frame.record.commit, frame.record.entries[0].index, frame.record.entries[0].term]).toEqual([
      big,
      big - 1,
      big - 2,
      big,
    ]);
    expect(() => encodeRecord(1, 0, [ent(1, 2 ** 53)])).toThrow(RangeError);
  });

  test('every single-bit flip in a record is detected', () => {
    const buf = encodeRecord(1, 0, [ent(1, 1, 'abc'), ent(2, 1, 'defg')]);
    // A trailing record after it, so that no damage can pass for a torn end of file.
    const two = Buffer.concat([buf, encodeRecord(2, 0, [ent(3, 1)])]);
    for (let byte = 0; byte < buf.length; byte++) {
      for (let bit = 0; bit < 8; bit++) {
        const damaged = Buffer.from(two);
        damaged[byte] ^= 1 << bit;
        const frame = readFrame(damaged, 0);
        expect({ byte, bit, ok: frame.ok }).toEqual({ byte, bit, ok: false });
      }
    }
  });

  test('segment header, hard state and snapshot round trip and reject damage', () => {
    const header = encodeSegmentHeader(12, 3456);
    expect(decodeSegmentHeader(header)).toEqual({ segment: 12, firstRecord: 3456 });
    header[13] ^= 1;
    expect(decodeSegmentHeader(header)).toEqual({ error: 'segment header checksum mismatch' });

    const hs = encodeHardState({ term: 7, vote: 2, commit: 99 });
    expect(decodeHardState(hs)).toEqual({ term: 7, vote: 2, commit: 99 });
    expect(decodeHardState(hs.subarray(0, 39))).toEqual({ error: 'file is 39 bytes, expected 40' });

    const snap = { metadata: { index: 100, term: 5, confState: { voters: [1, 2], learners: [3] } }, data: new Uint8Array([9, 8, 7]) };
    const pieces = [...encodeSnapshot(snap.metadata, { segment: 4, record: 77 }, imageOf(snap.data))];
    expect(pieces[1].buffer).toBe(snap.data.buffer); // the image is written as it is, not copied
    const file = Buffer.concat(pieces);
    expect(decodeSnapshot(file)).toEqual({ snapshot: snap, start: { segment: 4, record: 77 } });
    file[file.length - 6] ^= 1;
    expect(decodeSnapshot(file)).toMatchObject({ error: 'snapshot checksum mismatch' });
  });

  test('a snapshot image streamed through one reused buffer encodes as the same bytes', () => {
    const meta = { index: 9, term: 2, confState: { voters: [1], learners: [] } };
    const data = Buffer.from('abcdefghij');
    const reused = Buffer.alloc(3);
    const streamed = {
      size: data.length,
      *pieces() {
        for (let at = 0; at < data.length; at += reused.length) {
          const n = data.copy(reused, 0, at, at + reused.length);
          yield reused.subarray(0, n);
        }
      },
    };
    // Each piece is consumed before the next is produced, as writeFileAtomic does.
    const consumed: Buffer[] = [];
    for (const piece of encodeSnapshot(meta, { segment: 1, record: 0 }, streamed)) consumed.push(Buffer.from(piece));
    expect(Buffer.concat(consumed)).toEqual(Buffer.concat([...encodeSnapshot(meta, { segment: 1, record: 0 }, imageOf(data))]));
    expect(decodeSnapshot(Buffer.concat(consumed))).toMatchObject({ snapshot: { data: new Uint8Array(data) } });
  });

  test('an image that is not as long as it announced is refused before the file is finished', () => {
    const meta = { index: 9, term: 2, confState: { voters: [1], learners: [] } };
    const short = { size: 5, pieces: () => [Buffer.from('abc')] };
    expect(() => [...encodeSnapshot(meta, { segment: 1, record: 0 }, short)]).toThrow('the state machine image was 3 bytes long, not the 5 it announced');
  });

  test('file names', () => {
    expect(segmentName(1)).toBe('segment-0001');
    expect(segmentName(12345)).toBe('segment-12345');
    expect(parseSegmentName('segment-0042')).toBe(42);
    expect(parseSegmentName('segment-42')).toBeNull();
    expect(parseSegmentName('segment-0042.tmp')).toBeNull();
    expect(snapshotName(1000, 5)).toBe('snapshot-1000-5.dat');
    expect(parseSnapshotName('snapshot-1000-5.dat')).toEqual({ index: 1000, term: 5 });
    expect(parseSnapshotName('snapshot-1000-5.dat.tmp')).toBeNull();
  });
});
