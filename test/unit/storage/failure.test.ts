import * as path from 'path';
import { StorageFailedError } from '../../../agent/storage/errors';
import { ent, ents, segmentFiles, storageHarness } from './helpers';

describe('DiskStorage after a failed write or fsync', () => {
  const h = storageHarness();
  const isSegment = (f: string) => path.basename(f).startsWith('segment-');

  async function expectFailedForGood(storage: import('../../../agent/storage/disk_storage').DiskStorage, code: string) {
    expect(storage.failed).toBeInstanceOf(StorageFailedError);
    expect(storage.failed?.code).toBe(code);
    // The disk is healthy again, but nothing is accepted any more.
    await expect(storage.save({ entries: [ent(storage.lastIndex() + 1, 9)] })).rejects.toBe(storage.failed);
    await expect(storage.save({ hardState: { term: 9, vote: 1, commit: 0 } })).rejects.toBe(storage.failed);
    await expect(storage.createSnapshot(1, { voters: [1], learners: [] }, new Uint8Array(0))).rejects.toBe(storage.failed);
    await expect(storage.compact(1)).rejects.toBe(storage.failed);
    await expect(storage.flush()).rejects.toBe(storage.failed);
  }

  test('ENOSPC while writing the log rejects the save and every later one', async () => {
    const { storage, fs, logger } = await h.open();
    await storage.save({ hardState: { term: 1, vote: 1, commit: 0 }, entries: ents(1, 5, 1) });
    fs.failNext('write', 'ENOSPC', isSegment, 40);

    const failed = storage.save({ entries: ents(6, 10, 1) });
    await expect(failed).rejects.toThrow(StorageFailedError);
    await expect(failed).rejects.toThrow(/Free disk space/);
    expect(storage.lastIndex()).toBe(5);
    await expectFailedForGood(storage, 'ENOSPC');
    expect(storage.lastIndex()).toBe(5);
    expect(logger.lines.filter((l) => l.level === 'error')).toHaveLength(1);

    // The short write left a torn record behind; restart drops it and keeps what was durable.
    await fs.crash();
    const { storage: again, logger: log2 } = await h.open();
    expect(again.lastIndex()).toBe(5);
    expect(log2.warnings).toHaveLength(1);
    await again.save({ entries: ents(6, 7, 1) });
    expect(again.lastIndex()).toBe(7);
    await again.close();
  });

  test('EIO from fsync of the log rejects the save and every later one', async () => {
    const { storage, fs } = await h.open();
    await storage.save({ entries: ents(1, 3, 1) });
    fs.failNext('sync', 'EIO', isSegment);
    await expect(storage.save({ entries: ents(4, 6, 1) })).rejects.toThrow(/Check the disk/);
    // Not acknowledged, so not visible to the core either.
    expect(storage.lastIndex()).toBe(3);
    await expectFailedForGood(storage, 'EIO');
  });

  test('a failed hard-state write leaves the old term and vote in force', async () => {
    const { storage, fs } = await h.open();
    await storage.save({ hardState: { term: 1, vote: 1, commit: 0 }, entries: ents(1, 2, 1) });
    fs.failNext('sync', 'EIO', (f) => f.endsWith('hardstate.tmp'));
    await expect(storage.save({ hardState: { term: 2, vote: 3, commit: 0 }, entries: [ent(3, 2)] })).rejects.toThrow(
      StorageFailedError,
    );
    expect(storage.initialState().hardState).toEqual({ term: 1, vote: 1, commit: 0 });
    expect(storage.lastIndex()).toBe(2);
    await expectFailedForGood(storage, 'EIO');
    await fs.crash();

    const { storage: again } = await h.open();
    expect(again.initialState().hardState).toEqual({ term: 1, vote: 1, commit: 0 });
    expect(again.lastIndex()).toBe(2);
    await again.close();
  });

  test('ENOSPC while writing a snapshot fails the storage and keeps the previous snapshot', async () => {
    const { storage, fs } = await h.open();
    await storage.save({ entries: ents(1, 10, 1) });
    await storage.createSnapshot(4, { voters: [1], learners: [] }, Buffer.from('four'));
    fs.failNext('write', 'ENOSPC', (f) => f.includes('snapshot-8-1'));
    await expect(storage.createSnapshot(8, { voters: [1], learners: [] }, Buffer.from('eight'))).rejects.toThrow(
      StorageFailedError,
    );
    expect(storage.snapshot().metadata.index).toBe(4);
    await expectFailedForGood(storage, 'ENOSPC');
    await fs.crash();

    const { storage: again } = await h.open();
    expect(again.snapshot().metadata.index).toBe(4);
    expect(again.lastIndex()).toBe(10);
    await again.close();
  });

  test('a snapshot from the leader that fails to install leaves the old log in force after restart', async () => {
    const { storage, fs } = await h.open();
    await storage.save({ hardState: { term: 1, vote: 1, commit: 5 }, entries: ents(1, 10, 1) });
    fs.failNext('rename', 'EIO', (f) => f.includes('snapshot-50-2'));
    const snap = { metadata: { index: 50, term: 2, confState: { voters: [1], learners: [] } }, data: new Uint8Array(0) };
    await expect(
      storage.save({ hardState: { term: 2, vote: 0, commit: 50 }, snapshot: snap, entries: ents(51, 52, 2) }),
    ).rejects.toThrow(StorageFailedError);
    expect([storage.snapshot().metadata.index, storage.lastIndex()]).toEqual([0, 10]);
    await fs.crash();

    const { storage: again } = await h.open();
    expect([again.snapshot().metadata.index, again.firstIndex(), again.lastIndex()]).toEqual([0, 1, 10]);
    // The new term was written before the snapshot failed; that is safe, and it stays.
    expect(again.initialState().hardState).toEqual({ term: 2, vote: 0, commit: 5 });
    await again.close();
  });

  test('a failure creating the next segment fails the storage', async () => {
    const { storage, fs } = await h.open({ segmentBytes: 200 });
    await storage.save({ entries: ents(1, 5, 1) });
    fs.failNext('syncDir', 'EIO', (d) => path.basename(d) === 'log');
    await expect(storage.save({ entries: ents(6, 10, 1) })).rejects.toThrow(StorageFailedError);
    expect(storage.lastIndex()).toBe(5);
    await expectFailedForGood(storage, 'EIO');
  });

  test('a segment that cannot be removed during compaction is only a warning', async () => {
    const { storage, fs, logger } = await h.open({ segmentBytes: 200 });
    for (let i = 0; i < 6; i++) await storage.save({ entries: ents(i * 5 + 1, i * 5 + 5, 1) });
    await storage.createSnapshot(25, { voters: [1], learners: [] }, new Uint8Array(0));
    fs.failNext('remove', 'EACCES', isSegment);
    await storage.compact(25);
    expect(storage.failed).toBeNull();
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0].msg).toContain('could not remove');
    const left = await segmentFiles(h.dir());
    // The next compaction retries.
    await storage.save({ entries: ents(31, 35, 1) });
    await storage.compact(25);
    expect((await segmentFiles(h.dir())).length).toBeLessThan(left.length);
    await storage.close();
  });
});
