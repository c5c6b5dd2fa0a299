import * as path from 'path';
import { ent, ents, storageHarness } from './helpers';

describe('DiskStorage group commit', () => {
  const h = storageHarness();
  // Preallocation's writes of zeros run beside the records' (preallocation.test.ts); off here,
  // so that the counts below are the records' alone.
  const open = (opts: { segmentBytes?: number } = {}) => h.open({ preallocateBytes: 0, ...opts });
  const inLog = (file: string): boolean => file.includes(`${path.sep}log${path.sep}segment-`);
  const inState = (file: string): boolean => file.includes(`${path.sep}state${path.sep}`);

  test('N entries in one save cost one write and one fsync of the log', async () => {
    const { storage, fs } = await open();
    fs.reset();
    await storage.save({ hardState: { term: 0, vote: 0, commit: 0 }, entries: ents(1, 500, 0) });
    expect(fs.count('write', inLog)).toBe(1);
    expect(fs.count('sync', inLog)).toBe(1);
    expect(fs.count('sync')).toBe(1);
    expect(fs.count('syncDir')).toBe(0);
    expect(storage.lastIndex()).toBe(500);
    await storage.close();
  });

  test('each save syncs once, whatever its size', async () => {
    const { storage, fs } = await open();
    fs.reset();
    let next = 1;
    for (const size of [1, 7, 64, 3]) {
      await storage.save({ entries: ents(next, next + size - 1, 1) });
      next += size;
    }
    expect(fs.count('sync', inLog)).toBe(4);
    expect(fs.count('write', inLog)).toBe(4);
    await storage.close();
  });

  test('a term or vote change writes the hard-state file atomically, the log still synced once', async () => {
    const { storage, fs } = await open();
    fs.reset();
    await storage.save({ hardState: { term: 2, vote: 1, commit: 0 }, entries: ents(1, 10, 2) });
    expect(fs.count('sync', inLog)).toBe(1);
    expect(fs.count('sync', inState)).toBe(1); // the temporary file
    expect(fs.count('rename', inState)).toBe(1);
    expect(fs.count('syncDir', (dir) => path.basename(dir) === 'state')).toBe(1);
    await storage.close();
  });

  test('a commit-only change costs no write and no fsync', async () => {
    const { storage, fs } = await open();
    await storage.save({ hardState: { term: 1, vote: 1, commit: 0 }, entries: ents(1, 10, 1) });
    fs.reset();
    for (let c = 1; c <= 10; c++) await storage.save({ hardState: { term: 1, vote: 1, commit: c }, entries: [], mustSync: false });
    expect(fs.calls).toEqual([]);
    expect(storage.initialState().hardState.commit).toBe(10);
    await storage.close();
  });

  test('saves with mustSync false are made durable by the next synced save', async () => {
    const { storage, fs } = await open();
    fs.reset();
    await storage.save({ entries: [ent(1, 1)], mustSync: false });
    await storage.save({ entries: [ent(2, 1)], mustSync: false });
    expect(fs.count('sync')).toBe(0);
    await storage.save({ entries: [ent(3, 1)] });
    expect(fs.count('sync', inLog)).toBe(1);
    expect(fs.count('write', inLog)).toBe(3);
    await storage.close();
  });

  test('concurrent saves are applied in call order', async () => {
    const { storage } = await open();
    await Promise.all([
      storage.save({ entries: ents(1, 5, 1) }),
      storage.save({ entries: ents(4, 6, 2) }),
      storage.save({ entries: [ent(7, 2)] }),
    ]);
    expect(storage.lastIndex()).toBe(7);
    expect([storage.term(3), storage.term(4), storage.term(7)]).toEqual([1, 2, 2]);
    await storage.close();
  });

  test('a rollover syncs the finished segment before the next one exists', async () => {
    const { storage, fs } = await open({ segmentBytes: 200 });
    await storage.save({ entries: [ent(1, 1, 'a'.repeat(100))], mustSync: false });
    fs.reset();
    await storage.save({ entries: [ent(2, 1, 'b'.repeat(100))] });
    const order = fs.calls.map((c) => `${c.op} ${path.basename(c.file)}`);
    expect(order).toEqual([
      'sync segment-0001',
      'open segment-0002',
      'write segment-0002',
      'sync segment-0002',
      'syncDir log',
      'write segment-0002',
      'sync segment-0002',
    ]);
    await storage.close();
  });
});
