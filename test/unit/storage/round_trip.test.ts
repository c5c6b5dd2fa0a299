import { EntryType } from '../../../agent/raft/types';
import { CompactedError, UnavailableError } from '../../../agent/raft/types';
import { ent, ents, logOf, plain, segmentFiles, storageHarness } from './helpers';

describe('DiskStorage round trip', () => {
  const h = storageHarness();

  test('a fresh directory is an empty log at index 0', async () => {
    const { storage } = await h.open();
    expect(storage.firstIndex()).toBe(1);
    expect(storage.lastIndex()).toBe(0);
    expect(storage.term(0)).toBe(0);
    expect(storage.initialState().hardState).toEqual({ term: 0, vote: 0, commit: 0 });
    expect(await segmentFiles(h.dir())).toEqual(['segment-0001']);
    await storage.close();
  });

  test('entries, hard state and entry types come back after close and reopen', async () => {
    const { storage } = await h.open();
    const conf = { index: 3, term: 1, type: EntryType.ConfChange, data: new Uint8Array([0, 0, 0, 0, 2]) };
    await storage.save({ hardState: { term: 1, vote: 1, commit: 0 }, entries: [ent(1, 1), ent(2, 1, ''), conf] });
    await storage.save({ hardState: { term: 2, vote: 3, commit: 2 }, entries: ents(4, 6, 2) });
    const before = logOf(storage);
    await storage.close();

    const { storage: again } = await h.open();
    expect(logOf(again)).toEqual(before);
    expect(again.lastIndex()).toBe(6);
    expect(again.term(3)).toBe(1);
    expect(again.entries(3, 4)[0].type).toBe(EntryType.ConfChange);
    expect(again.initialState().hardState).toEqual({ term: 2, vote: 3, commit: 2 });
    await again.close();
  });

  test('what a save resolved survives a crash (no close)', async () => {
    const first = await h.open();
    await first.storage.save({ hardState: { term: 5, vote: 2, commit: 0 }, entries: ents(1, 10, 5) });
    await first.fs.crash();

    const { storage } = await h.open();
    expect(storage.lastIndex()).toBe(10);
    expect(storage.initialState().hardState.term).toBe(5);
    expect(storage.initialState().hardState.vote).toBe(2);
    await storage.close();
  });

  test('reads follow the Storage contract: compacted and unavailable indexes throw', async () => {
    const { storage } = await h.open();
    await storage.save({ entries: ents(1, 5, 1) });
    await storage.createSnapshot(2, { voters: [1], learners: [] }, new Uint8Array([1]));
    await storage.compact(2);
    expect(() => storage.entries(1, 3)).toThrow(CompactedError);
    expect(() => storage.entries(3, 7)).toThrow(UnavailableError);
    expect(() => storage.term(1)).toThrow(CompactedError);
    expect(storage.term(2)).toBe(1);
    expect(plain(storage.entries(3, 6, 0))).toEqual(plain([ent(3, 1)]));
    await storage.close();
  });

  test('a conflicting suffix is replaced, in memory and after reopen', async () => {
    const { storage } = await h.open();
    await storage.save({ hardState: { term: 1, vote: 1, commit: 3 }, entries: ents(1, 10, 1) });
    await storage.save({ hardState: { term: 2, vote: 2, commit: 3 }, entries: ents(6, 8, 2) });
    expect(storage.lastIndex()).toBe(8);
    expect(storage.term(5)).toBe(1);
    expect(storage.term(6)).toBe(2);
    // A second conflict inside the replacement, at a single entry.
    await storage.save({ hardState: { term: 3, vote: 3, commit: 3 }, entries: [ent(7, 3)] });
    const expected = plain([...ents(1, 5, 1), ent(6, 2), ent(7, 3)]);
    expect(logOf(storage)).toEqual(expected);
    await storage.close();

    const { storage: again } = await h.open();
    expect(logOf(again)).toEqual(expected);
    await again.close();
  });

  test('a conflict that reaches back into an earlier segment is replayed correctly', async () => {
    const { storage } = await h.open({ segmentBytes: 256 });
    for (let i = 1; i <= 20; i++) await storage.save({ entries: [ent(i, 1, 'x'.repeat(40))] });
    expect((await segmentFiles(h.dir())).length).toBeGreaterThan(3);
    await storage.save({ hardState: { term: 2, vote: 1, commit: 2 }, entries: ents(3, 4, 2) });
    await storage.close();

    const { storage: again } = await h.open({ segmentBytes: 256 });
    expect(again.lastIndex()).toBe(4);
    expect([again.term(2), again.term(3), again.term(4)]).toEqual([1, 2, 2]);
    await again.close();
  });

  test('appending past the end of the log is refused without failing the storage', async () => {
    const { storage } = await h.open();
    await storage.save({ entries: ents(1, 3, 1) });
    await expect(storage.save({ entries: [ent(5, 1)] })).rejects.toThrow('missing log entry: last index is 3, appending at 5');
    await expect(storage.save({ entries: [ent(4, 1), ent(6, 1)] })).rejects.toThrow('not consecutive');
    expect(storage.failed).toBeNull();
    await storage.save({ entries: [ent(4, 1)] });
    expect(storage.lastIndex()).toBe(4);
    await storage.close();
  });

  test('a commit-only change is persisted lazily but never goes backwards', async () => {
    const first = await h.open();
    await first.storage.save({ hardState: { term: 1, vote: 1, commit: 2 }, entries: ents(1, 5, 1) });
    await first.storage.save({ hardState: { term: 1, vote: 1, commit: 4 }, entries: [] });
    expect(first.storage.initialState().hardState.commit).toBe(4);
    await first.fs.crash();

    // The commit index rode along with the entries (2); the commit-only change (4) was lazy.
    const second = await h.open();
    expect(second.storage.initialState().hardState).toEqual({ term: 1, vote: 1, commit: 2 });
    await second.storage.save({ hardState: { term: 1, vote: 1, commit: 5 }, entries: [] });
    await second.storage.close();

    // close() persists it.
    const third = await h.open();
    expect(third.storage.initialState().hardState.commit).toBe(5);
    // A vote in a new term rewrites the hard-state file; its commit must not drop below 5.
    await third.storage.save({ hardState: { term: 2, vote: 2, commit: 5 } });
    await third.fs.crash();

    const fourth = await h.open();
    expect(fourth.storage.initialState().hardState).toEqual({ term: 2, vote: 2, commit: 5 });
    await fourth.storage.close();
  });

  test('flush() makes a lazily kept commit index durable', async () => {
    const first = await h.open();
    await first.storage.save({ hardState: { term: 1, vote: 1, commit: 1 }, entries: ents(1, 3, 1) });
    await first.storage.save({ hardState: { term: 1, vote: 1, commit: 3 } });
    await first.storage.flush();
    await first.fs.crash();

    const { storage } = await h.open();
    expect(storage.initialState().hardState.commit).toBe(3);
    await storage.close();
  });

  test('a snapshot from the leader replaces the whole log, and stale entries never come back', async () => {
    const { storage } = await h.open({ segmentBytes: 512 });
    await storage.save({ hardState: { term: 1, vote: 1, commit: 2 }, entries: ents(1, 30, 1) });
    const snap = { metadata: { index: 20, term: 3, confState: { voters: [1, 2, 3], learners: [4] } }, data: Buffer.from('image') };
    await storage.save({ hardState: { term: 3, vote: 0, commit: 20 }, snapshot: snap, entries: ents(21, 22, 3) });
    expect(storage.firstIndex()).toBe(21);
    expect(storage.lastIndex()).toBe(22);
    expect(storage.term(20)).toBe(3);
    await storage.close();

    const { storage: again } = await h.open({ segmentBytes: 512 });
    expect(again.firstIndex()).toBe(21);
    expect(again.lastIndex()).toBe(22);
    expect(logOf(again)).toEqual(plain(ents(21, 22, 3)));
    expect(again.snapshot().metadata).toEqual(snap.metadata);
    expect(Buffer.from(again.snapshot().data).toString()).toBe('image');
    expect(again.initialState()).toEqual({ hardState: { term: 3, vote: 0, commit: 20 }, confState: { voters: [1, 2, 3], learners: [4] } });
    // The log before the snapshot is gone from disk too.
    expect(await segmentFiles(h.dir())).toEqual(['segment-0002']);
    await again.close();
  });

  test('a snapshot from the leader beyond the end of the log, with nothing after it', async () => {
    const { storage } = await h.open();
    await storage.save({ entries: ents(1, 3, 1) });
    const snap = { metadata: { index: 100, term: 7, confState: { voters: [1], learners: [] } }, data: new Uint8Array(0) };
    await storage.save({ hardState: { term: 7, vote: 0, commit: 100 }, snapshot: snap });
    await storage.close();

    const { storage: again } = await h.open();
    expect([again.firstIndex(), again.lastIndex(), again.term(100)]).toEqual([101, 100, 7]);
    await again.save({ entries: ents(101, 102, 7) });
    await again.close();

    const { storage: third } = await h.open();
    expect(logOf(third)).toEqual(plain(ents(101, 102, 7)));
    await third.close();
  });

  test('an older snapshot from the leader is ignored, as MemoryStorage ignores it', async () => {
    const { storage } = await h.open();
    await storage.save({ entries: ents(1, 10, 1) });
    await storage.createSnapshot(8, { voters: [1], learners: [] }, new Uint8Array(0));
    const old = { metadata: { index: 5, term: 1, confState: { voters: [1], learners: [] } }, data: new Uint8Array(0) };
    await storage.save({ snapshot: old, entries: [] });
    expect(storage.snapshot().metadata.index).toBe(8);
    expect(storage.lastIndex()).toBe(10);
    await storage.close();
  });

  test('writes after close are refused', async () => {
    const { storage } = await h.open();
    await storage.close();
    await expect(storage.save({ entries: [ent(1, 1)] })).rejects.toThrow('is closed');
    await storage.close(); // closing twice is harmless
  });
});
