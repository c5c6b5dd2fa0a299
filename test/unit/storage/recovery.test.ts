import { promises as fsp } from 'fs';
import * as path from 'path';
import { StorageCorruptionError } from '../../../agent/storage/errors';
import { SEGMENT_HEADER_BYTES } from '../../../agent/storage/format';
import { segmentRecords } from '../../support/segments';
import { ents, logOf, plain, segmentFiles, storageHarness } from './helpers';

async function flipByte(file: string, offset: number): Promise<void> {
  const buf = await fsp.readFile(file);
  buf[offset] ^= 0x40;
  await fsp.writeFile(file, buf);
}

describe('DiskStorage recovery', () => {
  const h = storageHarness();
  const seg = (n: string) => path.join(h.dir(), 'log', n);

  /** Three saves (entries 1-3, 4-6, 7-9) in segment-0001, then closed. */
  async function threeRecords(): Promise<string> {
    const { storage } = await h.open();
    await storage.save({ hardState: { term: 1, vote: 1, commit: 0 }, entries: ents(1, 3, 1) });
    await storage.save({ entries: ents(4, 6, 1) });
    await storage.save({ entries: ents(7, 9, 1) });
    await storage.close();
    return seg('segment-0001');
  }

  /** `damage` gets the offset of the last record and the offset where it ends. */
  async function expectTornTailDropsLastRecord(damage: (file: string, lastRecord: number, end: number) => Promise<void>) {
    const file = await threeRecords();
    const { offsets, end } = segmentRecords(file);
    expect((await fsp.stat(file)).size).toBeGreaterThan(end); // preallocated space follows the records
    await damage(file, offsets[2], end);

    const { storage, logger } = await h.open();
    expect(storage.lastIndex()).toBe(6);
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0].msg).toContain('torn write');
    expect(logger.warnings[0].fields).toMatchObject({ file, offset: offsets[2] });
    expect((await fsp.stat(file)).size).toBe(offsets[2]);
    // The log goes on from there, and the next open finds nothing to repair.
    await storage.save({ entries: ents(7, 8, 2) });
    await storage.close();
    const { storage: again, logger: quiet } = await h.open();
    expect(logOf(again)).toEqual(plain([...ents(1, 6, 1), ...ents(7, 8, 2)]));
    expect(quiet.warnings).toEqual([]);
    await again.close();
  }

  test('a record cut short at the end of the log is truncated with one warning', async () => {
    await expectTornTailDropsLastRecord((file, last) => fsp.truncate(file, last + 20));
  });

  test('a record header cut short is truncated with one warning', async () => {
    await expectTornTailDropsLastRecord((file, last) => fsp.truncate(file, last + 5));
  });

  test('a final record whose contents never arrived (checksum fails at the end of the file) is truncated', async () => {
    await expectTornTailDropsLastRecord((file, _last, end) => flipByte(file, end - 3));
  });

  test('a final record only partly written into preallocated space (zeros after it) is truncated', async () => {
    await expectTornTailDropsLastRecord(async (file, _last, end) => {
      const buf = await fsp.readFile(file);
      buf.fill(0, end - 10, end); // its last sector never arrived
      await fsp.writeFile(file, buf);
    });
  });

  test('zeros where the final record belongs end the log there, as preallocated space does, without a warning', async () => {
    const file = await threeRecords();
    const { offsets } = segmentRecords(file);
    const buf = await fsp.readFile(file);
    buf.fill(0, offsets[2]);
    await fsp.writeFile(file, buf);
    const { storage, logger } = await h.open();
    expect(storage.lastIndex()).toBe(6);
    expect(logger.warnings).toEqual([]);
    await storage.close();
  });

  test('preallocated zeros after the last record are kept and written over', async () => {
    const file = await threeRecords();
    const size = (await fsp.stat(file)).size;
    const { storage, logger } = await h.open();
    expect(storage.lastIndex()).toBe(9);
    expect(logger.warnings).toEqual([]);
    await storage.save({ entries: ents(10, 12, 1) });
    await storage.close();
    expect((await fsp.stat(file)).size).toBe(size);
    const { storage: again } = await h.open();
    expect(logOf(again)).toEqual(plain(ents(1, 12, 1)));
    await again.close();
  });

  test('garbage in the preallocated space, away from the last record, refuses to start', async () => {
    const file = await threeRecords();
    const { end } = segmentRecords(file);
    const buf = await fsp.readFile(file);
    buf[end + 5000] = 0x40;
    await fsp.writeFile(file, buf);
    await expect(h.open()).rejects.toThrow(`${file} is corrupt at byte offset ${end}: implausible record length 0`);
  });

  test('a segment whose creation was interrupted is removed with one warning', async () => {
    const { storage } = await h.open({ segmentBytes: 200 });
    await storage.save({ entries: ents(1, 5, 1) });
    await storage.save({ entries: ents(6, 10, 1) });
    await storage.close();
    const files = await segmentFiles(h.dir());
    expect(files).toEqual(['segment-0001', 'segment-0002']);
    await fsp.writeFile(seg('segment-0003'), Buffer.alloc(7));

    const { storage: again, logger } = await h.open({ segmentBytes: 200 });
    expect(again.lastIndex()).toBe(10);
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0].msg).toContain('creation a crash interrupted');
    await again.save({ entries: ents(11, 12, 1) });
    await again.close();
    const { storage: third } = await h.open({ segmentBytes: 200 });
    expect(third.lastIndex()).toBe(12);
    await third.close();
  });

  test('a checksum failure before the tail refuses to start, naming the file, the offset and the remedy', async () => {
    const file = await threeRecords();
    const offsets = segmentRecords(file).offsets;
    await flipByte(file, offsets[1] + 30);
    const damaged = await fsp.readFile(file);
    const attempt = h.open();
    await expect(attempt).rejects.toThrow(StorageCorruptionError);
    const err = (await attempt.catch((e: unknown) => e)) as StorageCorruptionError;
    expect(err.file).toBe(file);
    expect(err.offset).toBe(offsets[1]);
    expect(err.message).toContain(`${file} is corrupt at byte offset ${offsets[1]}`);
    expect(err.message).toContain('checksum');
    expect(err.message).toMatch(/re-seed this node from a healthy peer/);
    expect(err.message).toMatch(/restore a snapshot/);
    // Nothing was repaired or removed: the evidence stays as it was.
    expect((await fsp.readFile(file)).equals(damaged)).toBe(true);
    expect(await segmentFiles(h.dir())).toEqual(['segment-0001']);
  });

  test('damage to the last record of an earlier segment is corruption, not a torn tail', async () => {
    const { storage } = await h.open({ segmentBytes: 200 });
    await storage.save({ entries: ents(1, 5, 1) });
    await storage.save({ entries: ents(6, 10, 1) });
    await storage.close();
    const first = seg('segment-0001');
    await fsp.truncate(first, segmentRecords(first).end - 4);
    await expect(h.open({ segmentBytes: 200 })).rejects.toThrow(`${first} is corrupt at byte offset ${SEGMENT_HEADER_BYTES}`);
  });

  test('a damaged record length before the tail is corruption', async () => {
    const file = await threeRecords();
    const offsets = segmentRecords(file).offsets;
    await flipByte(file, offsets[0] + 3); // high byte of the first record's length
    await expect(h.open()).rejects.toThrow(`${file} is corrupt at byte offset ${offsets[0]}: implausible record length`);
  });

  test('a missing segment in the middle refuses to start', async () => {
    const { storage } = await h.open({ segmentBytes: 200 });
    for (let i = 0; i < 4; i++) await storage.save({ entries: ents(i * 5 + 1, i * 5 + 5, 1) });
    await storage.close();
    await fsp.rm(seg('segment-0002'));
    await expect(h.open({ segmentBytes: 200 })).rejects.toThrow(`${seg('segment-0002')} is corrupt at byte offset 0: this log segment is missing`);
  });

  test('a torn tail that would drop committed entries refuses to start', async () => {
    const { storage } = await h.open();
    await storage.save({ hardState: { term: 1, vote: 1, commit: 0 }, entries: ents(1, 5, 1) });
    await storage.save({ hardState: { term: 1, vote: 1, commit: 5 }, entries: ents(6, 10, 1) });
    await storage.save({ hardState: { term: 1, vote: 1, commit: 10 }, entries: ents(11, 12, 1) });
    // A new term rewrites the hard-state file, which now says entries up to 10 are committed.
    await storage.save({ hardState: { term: 2, vote: 2, commit: 10 } });
    await storage.close();
    const file = seg('segment-0001');
    const offsets = segmentRecords(file).offsets;
    await fsp.truncate(file, offsets[1] + 10);
    const hardState = path.join(h.dir(), 'state', 'hardstate');
    await expect(h.open()).rejects.toThrow(`${hardState} is corrupt at byte offset 0: it records commit index 10 but the log ends at index 5`);
  });

  test('a damaged hard-state file refuses to start', async () => {
    await threeRecords();
    const file = path.join(h.dir(), 'state', 'hardstate');
    await flipByte(file, 14);
    await expect(h.open()).rejects.toThrow(`${file} is corrupt at byte offset 0: checksum mismatch`);
  });

  test('a damaged newest snapshot refuses to start', async () => {
    const { storage } = await h.open();
    await storage.save({ entries: ents(1, 10, 1) });
    await storage.createSnapshot(8, { voters: [1], learners: [] }, Buffer.from('x'.repeat(100)));
    await storage.close();
    const file = path.join(h.dir(), 'snapshots', 'snapshot-8-1.dat');
    await flipByte(file, 80);
    await expect(h.open()).rejects.toThrow(`${file} is corrupt at byte offset`);
  });

  test('leftovers of interrupted atomic writes are removed', async () => {
    await threeRecords();
    const tmp = path.join(h.dir(), 'state', 'hardstate.tmp');
    await fsp.writeFile(tmp, 'half');
    const { storage } = await h.open();
    await expect(fsp.stat(tmp)).rejects.toThrow('ENOENT');
    expect(storage.initialState().hardState.term).toBe(1);
    await storage.close();
  });
  test('recovered entries share one copy per segment of the records replayed, not the file they were read from', async () => {
    const file = await threeRecords(); // records: entries 1-3, 4-6, 7-9
    const { storage } = await h.open();
    await storage.createSnapshot(5, { voters: [1], learners: [] }, Buffer.from('state'));
    await storage.close();
    const { offsets, end } = segmentRecords(file);

    const { storage: again } = await h.open();
    const kept = again.entries(again.firstIndex(), again.lastIndex() + 1);
    expect(logOf(again)).toEqual(plain(ents(6, 9, 1)));
    // Replay starts at the record that holds entry 6: records 2 and 3 are copied, the
    // first record and the preallocated zeros after the last are not.
    const buffers = new Set(kept.map((e) => e.data.buffer));
    expect(buffers.size).toBe(1);
    expect(kept[0].data.buffer.byteLength).toBe(end - offsets[1]);
    expect((await fsp.stat(file)).size).toBeGreaterThan(end);
    await again.close();
  });

  test('entries recovered from several segments keep one buffer per segment', async () => {
    const { storage } = await h.open({ segmentBytes: 200 });
    await storage.save({ entries: ents(1, 5, 1) });
    await storage.save({ entries: ents(6, 10, 1) });
    await storage.save({ entries: ents(9, 12, 2) }); // replaces 9-10 in the second segment's successor
    await storage.close();
    const files = await segmentFiles(h.dir());
    expect(files.length).toBe(3);

    const { storage: again } = await h.open({ segmentBytes: 200 });
    const kept = again.entries(1, again.lastIndex() + 1);
    expect(logOf(again)).toEqual(plain([...ents(1, 8, 1), ...ents(9, 12, 2)]));
    const bySegment = [kept.slice(0, 5), kept.slice(5, 8), kept.slice(8)].map((es) => new Set(es.map((e) => e.data.buffer)));
    expect(bySegment.map((b) => b.size)).toEqual([1, 1, 1]);
    expect(new Set(bySegment.map((b) => [...b][0])).size).toBe(3);
    for (const b of bySegment) expect([...b][0].byteLength).toBeLessThan(200);
    await again.close();
  });
});
