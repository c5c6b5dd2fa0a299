import { promises as fsp } from 'fs';
import * as path from 'path';
import { ent, ents, logOf, plain, segmentFiles, snapshotFiles, storageHarness } from './helpers';

const conf = { voters: [1, 2, 3], learners: [] };

describe('DiskStorage snapshots and compaction', () => {
  const h = storageHarness();

  /** 40 saves of one 60-byte entry each, about three records per 256-byte segment. */
  async function fillSegments(storage: { save: (r: { entries: ReturnType<typeof ents> }) => Promise<void> }) {
    for (let i = 1; i <= 40; i++) await storage.save({ entries: [ent(i, 1, 'p'.repeat(60))] });
  }

  test('snapshotState captures the state once earlier writes are done and writes its image piece by piece', async () => {
    const { storage } = await h.open();
    for (let i = 1; i <= 5; i++) await storage.save({ entries: [ent(i, 1, `e${i}`)] });
    // Queued behind a save still in flight: the capture must see that save's entries.
    const pending = storage.save({ entries: [ent(6, 1, 'e6')] });
    const reused = Buffer.alloc(4);
    const image = Buffer.from('the state at six, in pieces');
    let capturedAt = 0;
    const snap = storage.snapshotState(() => {
      capturedAt = storage.lastIndex();
      return {
        index: 6,
        confState: conf,
        image: {
          size: image.length,
          *pieces() {
            for (let at = 0; at < image.length; at += reused.length) yield reused.subarray(0, image.copy(reused, 0, at, at + reused.length));
          },
        },
      };
    });
    await pending;
    const taken = await snap;
    expect(capturedAt).toBe(6);
    expect(taken.metadata).toEqual({ index: 6, term: 1, confState: conf });
    expect(taken.data.length).toBe(0); // the image lives in the file, not in memory
    expect(Buffer.from(storage.snapshot().data)).toEqual(image);
    await storage.close();
    const { storage: again } = await h.open();
    expect(Buffer.from(again.snapshot().data)).toEqual(image);
    await again.close();
  });

  test('compaction that keeps the files frees the memory at once and leaves the files to a later compaction', async () => {
    const { storage } = await h.open({ segmentBytes: 256 });
    await fillSegments(storage);
    await storage.createSnapshot(30, conf, Buffer.from('state at 30'));
    const files = await segmentFiles(h.dir());
    await storage.compact(25, false);
    expect(storage.firstIndex()).toBe(26);
    expect(() => storage.entries(20, 26)).toThrow('compacted');
    expect(await segmentFiles(h.dir())).toEqual(files);
    await storage.compact(30);
    expect(storage.firstIndex()).toBe(31);
    expect((await segmentFiles(h.dir())).length).toBeLessThan(files.length);
    await storage.close();
  });

  test('compaction after a snapshot deletes the segments before it, and reopen reads none of them', async () => {
    const { storage } = await h.open({ segmentBytes: 256 });
    await fillSegments(storage);
    const before = await segmentFiles(h.dir());
    expect(before.length).toBeGreaterThan(10);

    const snap = await storage.createSnapshot(30, conf, Buffer.from('state at 30'));
    expect(snap.metadata).toEqual({ index: 30, term: 1, confState: conf });
    await storage.compact(30);
    expect(storage.firstIndex()).toBe(31);
    const after = await segmentFiles(h.dir());
    expect(after.length).toBeLessThan(6);
    // What is left starts with the segment holding entry 31.
    expect(after[0] > before[0]).toBe(true);
    expect(await snapshotFiles(h.dir())).toEqual(['snapshot-30-1.dat']);
    await storage.close();

    const fs = h.newFs();
    const { storage: again, logger } = await h.open({ segmentBytes: 256, fs });
    expect([again.firstIndex(), again.lastIndex()]).toEqual([31, 40]);
    expect(logOf(again)).toEqual(plain(ents(31, 40, 1).map((e) => ({ ...e, data: Buffer.from('p'.repeat(60)) }))));
    const read = fs.files('readFile').filter((f) => f.includes('segment-')).map((f) => path.basename(f));
    expect(read).toEqual(after);
    expect(logger.warnings).toEqual([]);
    await again.close();
  });

  test('a segment left before the snapshot (crash before deletion) is removed at open without being read', async () => {
    const { storage } = await h.open({ segmentBytes: 256 });
    await fillSegments(storage);
    await storage.createSnapshot(35, conf, new Uint8Array(0));
    await storage.compact(35);
    await storage.close();
    const kept = await segmentFiles(h.dir());
    // Put garbage where an old segment used to be: reading it would fail its checksums.
    await fsp.writeFile(path.join(h.dir(), 'log', 'segment-0001'), Buffer.alloc(300, 0xab));

    const fs = h.newFs();
    const { storage: again, logger } = await h.open({ segmentBytes: 256, fs });
    expect(again.lastIndex()).toBe(40);
    expect(fs.files('readFile').some((f) => f.endsWith('segment-0001'))).toBe(false);
    expect(await segmentFiles(h.dir())).toEqual(kept);
    expect(logger.lines.some((l) => l.level === 'info' && l.msg.includes('precede the snapshot'))).toBe(true);
    await again.close();
  });

  test('only the newest two snapshot files are kept', async () => {
    const { storage } = await h.open();
    await storage.save({ entries: ents(1, 20, 2) });
    for (const i of [5, 10, 15, 20]) await storage.createSnapshot(i, conf, Buffer.from(`s${i}`));
    expect(await snapshotFiles(h.dir())).toEqual(['snapshot-15-2.dat', 'snapshot-20-2.dat']);
    await storage.close();
    const { storage: again } = await h.open();
    expect(again.snapshot().metadata.index).toBe(20);
    expect(Buffer.from(again.snapshot().data).toString()).toBe('s20');
    await again.close();
  });

  test('a snapshot in the middle of a record replays the entries after it', async () => {
    const { storage } = await h.open();
    await storage.save({ hardState: { term: 1, vote: 1, commit: 10 }, entries: ents(1, 10, 1) });
    await storage.createSnapshot(7, conf, new Uint8Array(0));
    await storage.compact(7);
    await storage.close();
    const { storage: again } = await h.open();
    expect(logOf(again)).toEqual(plain(ents(8, 10, 1)));
    expect(again.term(7)).toBe(1);
    await again.close();
  });

  test('a snapshot at the last index, then more entries and a conflict', async () => {
    const { storage } = await h.open({ segmentBytes: 256 });
    await fillSegments(storage);
    await storage.createSnapshot(40, conf, new Uint8Array(0));
    await storage.compact(40);
    await storage.save({ hardState: { term: 2, vote: 2, commit: 40 }, entries: ents(41, 45, 2) });
    await storage.save({ hardState: { term: 3, vote: 3, commit: 40 }, entries: ents(43, 44, 3) });
    await storage.close();
    const { storage: again } = await h.open({ segmentBytes: 256 });
    expect(logOf(again)).toEqual(plain([...ents(41, 42, 2), ...ents(43, 44, 3)]));
    expect(again.firstIndex()).toBe(41);
    await again.close();
  });

  test('compacting beyond the snapshot drops entries from memory but keeps the files restart needs', async () => {
    const { storage } = await h.open({ segmentBytes: 256 });
    await fillSegments(storage);
    await storage.createSnapshot(10, conf, new Uint8Array(0));
    const before = await segmentFiles(h.dir());
    await storage.compact(30);
    expect(storage.firstIndex()).toBe(31);
    const after = await segmentFiles(h.dir());
    expect(after.length).toBeLessThan(before.length);
    await storage.close();
    // Restart begins at the snapshot: entries 11..40 are all there.
    const { storage: again } = await h.open({ segmentBytes: 256 });
    expect([again.firstIndex(), again.lastIndex()]).toEqual([11, 40]);
    await again.close();
  });

  test('snapshot requests the model would refuse are refused the same way', async () => {
    const { storage } = await h.open();
    await storage.save({ entries: ents(1, 5, 1) });
    await expect(storage.createSnapshot(6, conf, new Uint8Array(0))).rejects.toThrow('not available');
    const s = await storage.createSnapshot(3, conf, new Uint8Array(0));
    expect(await storage.createSnapshot(2, conf, new Uint8Array(0))).toEqual(s);
    await expect(storage.compact(9)).rejects.toThrow('not available');
    expect(storage.failed).toBeNull();
    await storage.close();
  });

  test('a data directory holding only a snapshot (restored from a backup) opens at that snapshot', async () => {
    const { storage } = await h.open({ segmentBytes: 256 });
    await fillSegments(storage);
    await storage.createSnapshot(33, conf, Buffer.from('backup'));
    await storage.close();
    await fsp.rm(path.join(h.dir(), 'log'), { recursive: true });
    await fsp.rm(path.join(h.dir(), 'state'), { recursive: true });

    const { storage: restored } = await h.open({ segmentBytes: 256 });
    expect([restored.firstIndex(), restored.lastIndex()]).toEqual([34, 33]);
    expect(restored.initialState()).toEqual({ hardState: { term: 0, vote: 0, commit: 33 }, confState: conf });
    await restored.save({ hardState: { term: 4, vote: 1, commit: 33 }, entries: ents(34, 36, 4) });
    await restored.close();

    const { storage: again } = await h.open({ segmentBytes: 256 });
    expect(logOf(again)).toEqual(plain(ents(34, 36, 4)));
    await again.close();
  });
  test('the snapshot image is read back from its file when asked for, not kept in memory', async () => {
    const fs = h.newFs();
    const { storage } = await h.open({ fs });
    await storage.save({ entries: ents(1, 5, 1) });
    const image = Buffer.from('the whole state at 4');
    await storage.createSnapshot(4, conf, image);
    fs.reset();
    expect(storage.snapshotMetadata()).toEqual({ index: 4, term: 1, confState: conf });
    expect(fs.files('readFile')).toEqual([]);
    const snap = storage.snapshot();
    expect(Buffer.from(snap.data).toString()).toBe('the whole state at 4');
    expect(fs.files('readFile').map((f) => path.basename(f))).toEqual(['snapshot-4-1.dat']);
    // A damaged file is reported as such, with its name.
    const file = fs.files('readFile')[0];
    const bytes = await fsp.readFile(file);
    bytes[bytes.length - 6] ^= 0xff;
    await fsp.writeFile(file, bytes);
    expect(() => storage.snapshot()).toThrow(/snapshot-4-1\.dat is corrupt.*checksum/);
    await storage.close();
  });
});

describe('DiskStorage snapshots taken while the log is written', () => {
  const h = storageHarness();
  const taken = (file: string) => file.endsWith('.taken.tmp');
  const image = (text: string) => {
    const bytes = Buffer.from(text);
    return { size: bytes.length, *pieces() { yield bytes; } };
  };

  test('log writes go on while the snapshot file is written; close() waits for the snapshot', async () => {
    const { storage, fs } = await h.open();
    await storage.save({ entries: ents(1, 10, 1), hardState: { term: 1, vote: 1, commit: 10 } });
    const hold = fs.holdNext('sync', taken);
    let settled = false;
    const snap = storage.snapshotState(() => ({ index: 10, confState: conf, image: image('state at 10') }));
    void snap.then(() => (settled = true));
    await hold.reached;
    // The snapshot's file is not durable yet, and the log takes a write all the same.
    await storage.save({ entries: ents(11, 12, 1), hardState: { term: 1, vote: 1, commit: 12 } });
    expect(storage.lastIndex()).toBe(12);
    expect(storage.snapshotMetadata().index).toBe(0);
    let closed = false;
    const closing = storage.close().then(() => (closed = true));
    expect([settled, closed]).toEqual([false, false]);
    hold.release();
    expect((await snap).metadata.index).toBe(10);
    await closing;
    expect(await snapshotFiles(h.dir())).toEqual(['snapshot-10-1.dat']);
    const { storage: again } = await h.open();
    expect([again.snapshotMetadata().index, again.lastIndex()]).toEqual([10, 12]);
    expect(Buffer.from(again.snapshot().data).toString()).toBe('state at 10');
    await again.close();
  });

  test('a newer snapshot installed while the file is written wins, and the file taken is dropped', async () => {
    const { storage, fs } = await h.open();
    await storage.save({ entries: ents(1, 10, 1), hardState: { term: 1, vote: 1, commit: 10 } });
    const hold = fs.holdNext('sync', taken);
    const snap = storage.snapshotState(() => ({ index: 10, confState: conf, image: image('ours at 10') }));
    await hold.reached;
    const leaders = { metadata: { index: 20, term: 2, confState: conf }, data: Buffer.from('the leader\'s at 20') };
    await storage.save({ snapshot: leaders, hardState: { term: 2, vote: 0, commit: 20 } });
    hold.release();
    const result = await snap;
    expect(result.metadata).toEqual({ index: 20, term: 2, confState: conf });
    expect(await snapshotFiles(h.dir())).toEqual(['snapshot-20-2.dat']);
    expect((await fsp.readdir(path.join(h.dir(), 'snapshots'))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    await storage.close();
    const { storage: again } = await h.open();
    expect(Buffer.from(again.snapshot().data).toString()).toBe("the leader's at 20");
    await again.close();
  });
});
