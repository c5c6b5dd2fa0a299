import { promises as fsp } from 'fs';
import * as path from 'path';
import { DEFAULT_PREALLOCATE_BYTES } from '../../../agent/storage/disk_storage';
import { SEGMENT_HEADER_BYTES } from '../../../agent/storage/format';
import { ent, ents, logOf, plain, segmentFiles, storageHarness } from './helpers';

describe('DiskStorage preallocation', () => {
  const h = storageHarness();
  const seg = (n: string) => path.join(h.dir(), 'log', n);
  const size = async (n: string) => (await fsp.stat(seg(n))).size;
  const isSegment = (file: string): boolean => file.includes(`${path.sep}log${path.sep}segment-`);

  test('records are written over zeros written ahead of them: saves leave the file size alone', async () => {
    const { storage } = await h.open();
    // The first record grows the file; then the zeros are written after it, and the next save
    // waits for them before writing over them.
    await storage.save({ entries: [ent(1, 1)] });
    await storage.save({ entries: [ent(2, 1)] });
    const preallocated = await size('segment-0001');
    expect(preallocated).toBeGreaterThan(SEGMENT_HEADER_BYTES + DEFAULT_PREALLOCATE_BYTES);
    expect(preallocated).toBeLessThan(SEGMENT_HEADER_BYTES + DEFAULT_PREALLOCATE_BYTES + 100);
    for (let i = 3; i <= 50; i++) await storage.save({ entries: [ent(i, 1)] });
    expect(await size('segment-0001')).toBe(preallocated);
    await storage.close();
    const { storage: again, logger } = await h.open();
    expect(logOf(again)).toEqual(plain(ents(1, 50, 1)));
    expect(logger.warnings).toEqual([]);
    await again.close();
  });

  test('more zeros are written once less than half of those ahead are left', async () => {
    const { storage } = await h.open({ preallocateBytes: 4096 });
    const big = (i: number) => ent(i, 1, 'x'.repeat(900));
    await storage.save({ entries: [big(1)] });
    await storage.save({ entries: [big(2)] });
    const first = await size('segment-0001');
    let i = 3;
    while ((await size('segment-0001')) === first) await storage.save({ entries: [big(i++)] });
    // It grew by one more step, before the records reached the end of the zeros.
    expect(await size('segment-0001')).toBe(first + 4096);
    expect(i - 3).toBeLessThanOrEqual(4);
    await storage.close();
  });

  test('zeros stay within the segment size, and recovery reads past those of a full segment', async () => {
    const { storage } = await h.open({ segmentBytes: 2048, preallocateBytes: 1024 });
    for (let i = 1; i <= 40; i++) await storage.save({ entries: [ent(i, 1, 'y'.repeat(100))] });
    await storage.close();
    const files = await segmentFiles(h.dir());
    expect(files.length).toBeGreaterThan(2);
    for (const f of files) expect(await size(f)).toBeLessThanOrEqual(2048);
    const { storage: again, logger } = await h.open({ segmentBytes: 2048, preallocateBytes: 1024 });
    expect(again.lastIndex()).toBe(40);
    expect(again.entries(1, 41).map((e) => Buffer.from(e.data).toString())).toEqual(Array.from({ length: 40 }, () => 'y'.repeat(100)));
    expect(logger.warnings).toEqual([]);
    await again.close();
  });

  test('a failed preallocation is one warning; records are written without it and nothing is lost', async () => {
    const { storage, fs, logger } = await h.open();
    fs.failNext('write', 'ENOSPC', (file, bytes) => isSegment(file) && (bytes ?? 0) >= DEFAULT_PREALLOCATE_BYTES);
    for (let i = 1; i <= 20; i++) await storage.save({ entries: [ent(i, 1)] });
    expect(storage.failed).toBeNull();
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0].msg).toContain('could not preallocate log space');
    expect(logger.warnings[0].fields).toMatchObject({ error: expect.stringContaining('ENOSPC') });
    expect(await size('segment-0001')).toBeLessThan(4096); // no retry until the next segment
    await storage.close();
    const { storage: again } = await h.open();
    expect(logOf(again)).toEqual(plain(ents(1, 20, 1)));
    await again.close();
  });

  test('a crash with zeros ahead of the log loses nothing that was saved', async () => {
    const { storage, fs } = await h.open();
    for (let i = 1; i <= 30; i++) await storage.save({ hardState: { term: 1, vote: 1, commit: i - 1 }, entries: [ent(i, 1)] });
    await fs.crash();
    const { storage: again, logger } = await h.open();
    expect(logOf(again)).toEqual(plain(ents(1, 30, 1)));
    expect(logger.warnings).toEqual([]);
    await again.save({ entries: [ent(31, 1)] });
    expect(again.lastIndex()).toBe(31);
    await again.close();
  });
});
