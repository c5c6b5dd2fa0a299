import { MessageType } from '../../../agent/raft/types';
import { Cluster } from './harness';

describe('snapshots and InstallSnapshot (thesis §5)', () => {
  test('a follower behind the leader\'s compacted log receives a snapshot, then the entries after it', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    c.isolate(3);
    for (let i = 0; i < 10; i++) c.propose(1, `s${i}`);
    const snapIndex = c.snapshotAndCompact(1);
    expect(c.get(1).storage.firstIndex()).toBe(snapIndex + 1);
    c.heal();
    c.tick(1);
    const snaps = c.delivered.filter((m) => m.type === MessageType.Snap && m.to === 3);
    expect(snaps).toHaveLength(1);
    expect(snaps[0].snapshot!.metadata.index).toBe(snapIndex);
    expect(c.get(3).storage.snapshot().metadata).toMatchObject({ index: snapIndex, confState: { voters: [1, 2, 3] } });
    c.propose(1, 'after-snapshot');
    expect(c.appliedData(3)).toEqual(['after-snapshot']);
    expect(c.get(3).storage.lastIndex()).toBe(c.get(1).storage.lastIndex());
  });

  test('a snapshot the follower already covers is ignored (no log rewind)', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    for (let i = 0; i < 3; i++) c.propose(1, `s${i}`);
    const snap = c.get(1).storage.createSnapshot(4, { voters: [1, 2, 3], learners: [] }, new Uint8Array(0));
    const last = c.get(2).storage.lastIndex();
    c.stepInto({ ...c.delivered.find((m) => m.type === MessageType.App && m.to === 2)!, type: MessageType.Snap, snapshot: snap, entries: [] });
    const out = c.takeMessages(2);
    expect(out[0]).toMatchObject({ type: MessageType.AppResp, reject: false });
    expect(c.get(2).storage.lastIndex()).toBe(last);
    expect(c.get(2).storage.firstIndex()).toBe(1);
  });

  test('a node restarts from its snapshot plus the log after it', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    for (let i = 0; i < 5; i++) c.propose(1, `a${i}`);
    const snapIndex = c.snapshotAndCompact(2);
    for (let i = 0; i < 3; i++) c.propose(1, `b${i}`);
    const tn = c.restart(2);
    expect(tn.node.status().applied).toBe(snapIndex);
    c.tickAll(2);
    expect(c.appliedData(2)).toEqual(['b0', 'b1', 'b2']);
  });

  test('a failed snapshot delivery makes the leader retry', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    c.isolate(3);
    for (let i = 0; i < 4; i++) c.propose(1, `s${i}`);
    c.snapshotAndCompact(1);
    c.heal();
    c.drop(MessageType.Snap);
    c.tick(1);
    expect(c.get(1).node.status().progress!.get(3)!.state).toBe('snapshot');
    c.get(1).node.reportSnapshot(3, false);
    c.heal();
    c.tick(1, 2);
    expect(c.get(1).node.status().progress!.get(3)!.state).toBe('replicate');
    expect(c.get(3).storage.lastIndex()).toBe(c.get(1).storage.lastIndex());
  });
});
