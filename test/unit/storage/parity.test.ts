import { MemoryStorage } from '../../../agent/raft/memory_storage';
import { SeededRng } from '../../../agent/raft/rng';
import { ConfState, Entry, EntryType, HardState, Snapshot } from '../../../agent/raft/types';
import { DiskStorage } from '../../../agent/storage/disk_storage';
import { LogCache } from '../../../agent/storage/log_cache';
import { logOf, plain, storageHarness, TestFs } from './helpers';

/**
 * Random sequences of what a Raft driver does to its storage, applied to DiskStorage and to
 * MemoryStorage side by side; after every step both must answer every read alike. Restarts
 * (clean and crashed) are part of the sequence. The operations keep Raft's own invariants
 * (nothing at or below the commit index is overwritten, snapshots only of committed entries,
 * compaction only up to the snapshot) because restart checks them.
 */
describe('DiskStorage behaves like MemoryStorage', () => {
  const h = storageHarness();

  function compare(disk: DiskStorage, model: MemoryStorage, step: string): void {
    const where = `after ${step}`;
    expect({ where, first: disk.firstIndex(), last: disk.lastIndex() }).toEqual({
      where,
      first: model.firstIndex(),
      last: model.lastIndex(),
    });
    expect(logOf(disk)).toEqual(logOf(model));
    expect(disk.term(disk.firstIndex() - 1)).toBe(model.term(model.firstIndex() - 1));
    expect(disk.initialState()).toEqual(model.initialState());
    expect(disk.snapshot().metadata).toEqual(model.snapshot().metadata);
    expect(Buffer.from(disk.snapshot().data).equals(Buffer.from(model.snapshot().data))).toBe(true);
  }

  /** What a restarted node has: the snapshot and the log after it. */
  function restartModel(model: MemoryStorage, hs: HardState): MemoryStorage {
    const fresh = new MemoryStorage();
    const snap = model.snapshot();
    fresh.applySnapshot(snap);
    if (model.lastIndex() > snap.metadata.index) fresh.append(model.entries(snap.metadata.index + 1, model.lastIndex() + 1));
    fresh.setHardState(hs);
    return fresh;
  }

  async function run(seed: number, steps: number): Promise<Record<string, number>> {
    const rng = new SeededRng(seed);
    const counts: Record<string, number> = {};
    let fs: TestFs = h.newFs();
    let disk = (await h.open({ fs, segmentBytes: 400 })).storage;
    let model = new MemoryStorage();
    let hs: HardState = { term: 1, vote: 0, commit: 0 };
    model.setHardState(hs);
    await disk.save({ hardState: hs });
    const conf = (): ConfState => ({ voters: [1, 2, 3].slice(0, 1 + rng.intn(3)), learners: rng.chance(0.3) ? [4] : [] });
    const data = (): Uint8Array => {
      const out = new Uint8Array(rng.intn(60));
      for (let i = 0; i < out.length; i++) out[i] = rng.intn(256);
      return out;
    };
    const entriesFrom = (from: number, n: number, term: number): Entry[] =>
      Array.from({ length: n }, (_, k) => ({
        index: from + k,
        term,
        type: rng.chance(0.1) ? EntryType.ConfChange : EntryType.Normal,
        data: data(),
      }));

    for (let step = 0; step < steps; step++) {
      const roll = rng.intn(100);
      let what: string;
      if (roll < 45) {
        // Append, sometimes overwriting an uncommitted suffix in a newer term, sometimes
        // resending entries that are already compacted.
        what = 'append';
        const last = model.lastIndex();
        const lowest = Math.max(hs.commit + 1, model.firstIndex() - 2);
        let from = last + 1;
        if (rng.chance(0.3) && lowest <= last) from = lowest + rng.intn(last - lowest + 1);
        if (from <= last) hs = { ...hs, term: hs.term + 1, vote: 0 };
        const batch = entriesFrom(from, 1 + rng.intn(8), hs.term);
        if (rng.chance(0.5)) hs = { ...hs, commit: hs.commit + rng.intn(from + batch.length - 1 - hs.commit + 1) };
        model.append(batch);
        model.setHardState(hs);
        await disk.save({ hardState: hs, entries: batch, mustSync: true });
      } else if (roll < 55) {
        what = 'commit';
        hs = { ...hs, commit: hs.commit + rng.intn(model.lastIndex() - hs.commit + 1) };
        model.setHardState(hs);
        await disk.save({ hardState: hs, entries: [], mustSync: false });
      } else if (roll < 60) {
        what = 'vote';
        hs = { ...hs, term: hs.term + 1, vote: 1 + rng.intn(3) };
        model.setHardState(hs);
        await disk.save({ hardState: hs, entries: [], mustSync: true });
      } else if (roll < 68) {
        what = 'createSnapshot';
        const snapIndex = model.snapshot().metadata.index;
        const index = snapIndex + 1 + rng.intn(Math.max(1, hs.commit - snapIndex));
        if (index > hs.commit || index < model.firstIndex()) continue;
        const cs = conf();
        const d = data();
        const fromModel = model.createSnapshot(index, cs, d);
        const fromDisk = await disk.createSnapshot(index, cs, d);
        expect(fromDisk.metadata).toEqual(fromModel.metadata);
      } else if (roll < 76) {
        what = 'compact';
        // Up to the snapshot, as the driver compacts; first-1 and below are no-ops.
        const snapIndex = model.snapshot().metadata.index;
        const index = Math.max(0, model.firstIndex() - 2 + rng.intn(snapIndex - model.firstIndex() + 3));
        model.compact(index);
        await disk.compact(index);
      } else if (roll < 80) {
        what = 'leaderSnapshot';
        // Beyond our commit index (else the leader would have sent entries), sometimes
        // inside our uncommitted suffix, sometimes beyond the end of our log.
        const index = hs.commit + 1 + rng.intn(model.lastIndex() - hs.commit + 15);
        hs = { ...hs, term: hs.term + 1, vote: 0, commit: index };
        const snap: Snapshot = { metadata: { index, term: hs.term, confState: conf() }, data: data() };
        const follow = rng.chance(0.5) ? entriesFrom(index + 1, 1 + rng.intn(4), hs.term) : [];
        model.applySnapshot(snap);
        model.append(follow);
        model.setHardState(hs);
        await disk.save({ hardState: hs, snapshot: snap, entries: follow, mustSync: true });
      } else if (roll < 90) {
        what = 'restart';
        await disk.close();
        fs = h.newFs();
        disk = (await h.open({ fs, segmentBytes: 400 })).storage;
        model = restartModel(model, hs);
      } else {
        // A crash: everything a save resolved is durable, except a commit index that was
        // only kept in memory. It comes back no lower than the snapshot and no higher than
        // before; Raft relearns the rest from the leader.
        what = 'crash';
        await fs.crash();
        fs = h.newFs();
        const opened = await h.open({ fs, segmentBytes: 400 });
        disk = opened.storage;
        expect(opened.logger.warnings).toEqual([]);
        const recovered = disk.initialState().hardState;
        expect(recovered.term).toBe(hs.term);
        expect(recovered.vote).toBe(hs.vote);
        expect(recovered.commit).toBeLessThanOrEqual(hs.commit);
        expect(recovered.commit).toBeGreaterThanOrEqual(model.snapshot().metadata.index);
        hs = recovered;
        model = restartModel(model, hs);
      }
      counts[what] = (counts[what] ?? 0) + 1;
      compare(disk, model, `step ${step} (${what}), seed ${seed}`);
    }
    await disk.close();
    return counts;
  }

  for (const seed of [1, 2, 3, 4, 5, 6]) {
    test(`seed ${seed}`, async () => {
      const counts = await run(seed, 250);
      // Every kind of operation was exercised.
      for (const what of ['append', 'commit', 'vote', 'createSnapshot', 'compact', 'leaderSnapshot', 'restart', 'crash']) {
        expect({ what, ran: (counts[what] ?? 0) > 0 }).toEqual({ what, ran: true });
      }
    });
  }
});

/**
 * The in-memory half alone, against the model, with many more steps than disk allows and the
 * calls the driver should not make (reads out of range, appends with gaps) included: both
 * must answer or throw alike.
 */
describe('LogCache behaves like MemoryStorage', () => {
  function outcome(f: () => unknown): unknown {
    try {
      const v = f();
      return { value: Array.isArray(v) ? plain(v as Entry[]) : v };
    } catch (e) {
      return { error: (e as Error).name, message: (e as Error).message };
    }
  }

  for (const seed of [11, 12, 13]) {
    test(`seed ${seed}`, () => {
      const rng = new SeededRng(seed);
      const model = new MemoryStorage();
      const cache = new LogCache();
      let term = 1;
      for (let step = 0; step < 3000; step++) {
        const last = model.lastIndex();
        const roll = rng.intn(100);
        if (roll < 50) {
          if (rng.chance(0.2)) term++;
          const from = Math.max(0, last + 2 - rng.intn(last + 4));
          const batch = Array.from({ length: rng.intn(6) }, (_, k) => ({
            index: from + k,
            term,
            type: EntryType.Normal,
            data: new Uint8Array([k]),
          }));
          expect(outcome(() => cache.append(batch))).toEqual(outcome(() => model.append(batch)));
        } else if (roll < 60) {
          const index = rng.intn(last + 3);
          expect(outcome(() => cache.compact(index))).toEqual(outcome(() => model.compact(index)));
        } else if (roll < 65) {
          const index = model.snapshot().metadata.index + 1 + rng.intn(last - model.snapshot().metadata.index + 5);
          const snap: Snapshot = { metadata: { index, term, confState: { voters: [1], learners: [] } }, data: new Uint8Array(0) };
          cache.applySnapshot(snap);
          model.applySnapshot(snap);
        } else if (roll < 70) {
          const index = model.firstIndex() + rng.intn(Math.max(1, last - model.firstIndex() + 1));
          if (index > model.snapshot().metadata.index && index <= last) {
            const fromModel = model.createSnapshot(index, { voters: [2], learners: [] }, new Uint8Array([1]));
            cache.recordSnapshot(fromModel);
          }
        } else {
          const lo = rng.intn(last + 3);
          const hi = lo + rng.intn(6) - 1;
          const maxBytes = rng.chance(0.3) ? rng.intn(3) : undefined;
          expect(outcome(() => cache.entries(lo, hi, maxBytes))).toEqual(outcome(() => model.entries(lo, hi, maxBytes)));
          expect(outcome(() => cache.term(lo))).toEqual(outcome(() => model.term(lo)));
        }
        expect([cache.firstIndex(), cache.lastIndex()]).toEqual([model.firstIndex(), model.lastIndex()]);
        expect(cache.snapshot()).toEqual(model.snapshot());
      }
    });
  }
});
