import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { planNewCluster } from '../../../agent/cli/force_new_cluster';
import { decodeConfChange, encodeConfChange } from '../../../agent/raft/confchange';
import { bootstrapLog } from '../../../agent/raft/rawnode';
import { ConfChangeType, Entry, EntryType } from '../../../agent/raft/types';
import { DiskStorage } from '../../../agent/storage';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgraft-fnc-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const SELF_CONTEXT = { raft: '10.0.0.4:7001', api: '10.0.0.4:7002' };

/** Voters 1-3, learner 4 added at index 4, writes at 5-9 in term 2 of which 5-7 are known committed. */
async function cluster(): Promise<DiskStorage> {
  const storage = await DiskStorage.open({ dataDir: dir });
  const boot = bootstrapLog([1, 2, 3]);
  await storage.save({ entries: boot.entries, hardState: boot.hardState });
  const learner: Entry = { term: 2, index: 4, type: EntryType.ConfChange, data: encodeConfChange({ type: ConfChangeType.AddLearner, nodeId: 4, context: new Uint8Array(0) }) };
  const writes: Entry[] = [5, 6, 7, 8, 9].map((index) => ({ term: 2, index, type: EntryType.Normal, data: Buffer.from(`w${index}`) }));
  await storage.save({ entries: [learner, ...writes], hardState: { term: 2, vote: 1, commit: 7 } });
  return storage;
}

function changes(entries: Entry[]): string[] {
  return entries.map((e) => {
    const cc = decodeConfChange(e.data);
    return `${ConfChangeType[cc.type]} ${cc.nodeId} @${e.index}/t${e.term}`;
  });
}

describe('force-new-cluster plan', () => {
  it('removes every other member after the last entry, in a new term, and commits the whole log', async () => {
    const storage = await cluster();
    const plan = planNewCluster(storage, 2, SELF_CONTEXT);
    expect(plan.before).toEqual({ voters: [1, 2, 3], learners: [4] });
    expect({ removed: plan.removed, promoted: plan.promoted, uncommitted: plan.uncommitted }).toEqual({ removed: [1, 3, 4], promoted: false, uncommitted: 2 });
    expect(changes(plan.entries)).toEqual(['RemoveNode 1 @10/t3', 'RemoveNode 3 @11/t3', 'RemoveNode 4 @12/t3']);
    expect(plan.hardState).toEqual({ term: 3, vote: 2, commit: 12 });

    // Written and read back, the plan has nothing left to do.
    await storage.save({ entries: plan.entries, hardState: plan.hardState });
    await storage.close();
    const reopened = await DiskStorage.open({ dataDir: dir });
    expect(reopened.lastIndex()).toBe(12);
    expect(reopened.entries(9, 10)[0].data).toEqual(Buffer.from('w9')); // the uncommitted tail is kept
    const again = planNewCluster(reopened, 2, SELF_CONTEXT);
    expect(again.before).toEqual({ voters: [2], learners: [] });
    expect(again.entries).toEqual([]);
    await reopened.close();
  });

  it('writes in a term above the log\'s when the data directory holds a snapshot file alone', async () => {
    const storage = await DiskStorage.open({ dataDir: dir });
    const boot = bootstrapLog([1, 2, 3]);
    await storage.save({ entries: boot.entries, hardState: boot.hardState });
    const writes: Entry[] = [4, 5].map((index) => ({ term: 5, index, type: EntryType.Normal, data: Buffer.from(`w${index}`) }));
    await storage.save({ entries: writes, hardState: { term: 5, vote: 2, commit: 5 } });
    await storage.createSnapshot(5, { voters: [1, 2, 3], learners: [] }, new Uint8Array(0));
    await storage.close();
    const restored = fs.mkdtempSync(path.join(os.tmpdir(), 'pgraft-fnc-'));
    try {
      fs.mkdirSync(path.join(restored, 'snapshots'));
      for (const f of fs.readdirSync(path.join(dir, 'snapshots'))) fs.copyFileSync(path.join(dir, 'snapshots', f), path.join(restored, 'snapshots', f));
      const fromSnapshot = await DiskStorage.open({ dataDir: restored });
      expect(fromSnapshot.initialState().hardState.term).toBe(0);
      const plan = planNewCluster(fromSnapshot, 1, SELF_CONTEXT);
      expect(changes(plan.entries)).toEqual(['RemoveNode 2 @6/t6', 'RemoveNode 3 @7/t6']);
      expect(plan.hardState).toEqual({ term: 6, vote: 1, commit: 7 });
      await fromSnapshot.close();
    } finally {
      fs.rmSync(restored, { recursive: true, force: true });
    }
  });

  it('makes a learner a voter, with its addresses, before removing the others', async () => {
    const storage = await cluster();
    const plan = planNewCluster(storage, 4, SELF_CONTEXT);
    expect(plan.promoted).toBe(true);
    expect(changes(plan.entries)).toEqual(['AddVoter 4 @10/t3', 'RemoveNode 1 @11/t3', 'RemoveNode 2 @12/t3', 'RemoveNode 3 @13/t3']);
    expect(JSON.parse(Buffer.from(decodeConfChange(plan.entries[0].data).context).toString('utf8'))).toEqual(SELF_CONTEXT);
    await storage.close();
  });
});
