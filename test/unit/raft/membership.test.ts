import { ConfChangeType, MessageType, StateRole } from '../../../agent/raft/types';
import { MemoryStorage } from '../../../agent/raft/memory_storage';
import { Cluster } from './harness';

const cc = (type: ConfChangeType, nodeId: number) => ({ type, nodeId, context: new Uint8Array(0) });

function change(c: Cluster, leader: number, type: ConfChangeType, nodeId: number): void {
  c.get(leader).node.proposeConfChange(cc(type, nodeId));
  c.settle();
}

describe('membership changes (thesis §4.1, one server at a time)', () => {
  test('a new node joins as a learner with an empty log, catches up, and learns the membership', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    c.propose(1, 'before-join');
    c.add(4); // fresh storage: knows nothing
    change(c, 1, ConfChangeType.AddLearner, 4);
    c.tick(1);
    const st4 = c.get(4).node.status();
    expect(st4.config).toEqual({ voters: [1, 2, 3], learners: [4] });
    expect(c.appliedData(4)).toEqual(['before-join']);
    expect(c.get(1).node.status().progress!.get(4)!.isLearner).toBe(true);
  });

  test('a learner never votes in quorums and never campaigns', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    c.add(4);
    change(c, 1, ConfChangeType.AddLearner, 4);
    c.isolate(2);
    c.isolate(3);
    // Leader + learner are not a quorum of {1,2,3}: nothing commits.
    const commit = c.get(1).node.status().hardState.commit;
    c.get(1).node.propose(new Uint8Array([1]));
    c.settle();
    expect(c.get(1).node.status().hardState.commit).toBe(commit);
    // The learner does not campaign however long it waits.
    c.isolate(1);
    c.tick(4, 100);
    expect(c.get(4).node.status().softState.role).toBe(StateRole.Follower);
    expect(c.delivered.some((m) => m.from === 4 && (m.type === MessageType.PreVote || m.type === MessageType.Vote))).toBe(false);
  });

  test('promoting a learner makes it count: with it, the leader commits although one old voter is down', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    c.add(4);
    change(c, 1, ConfChangeType.AddLearner, 4);
    change(c, 1, ConfChangeType.AddVoter, 4);
    expect(c.get(1).node.status().config).toEqual({ voters: [1, 2, 3, 4], learners: [] });
    c.isolate(3);
    c.propose(1, 'with-four');
    expect(c.appliedData(1)).toEqual(['with-four']);
    expect(c.appliedData(4)).toEqual(['with-four']);
  });

  test('only one change at a time: a second proposal while the first is uncommitted is refused', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    c.isolate(2);
    c.isolate(3);
    c.get(1).node.proposeConfChange(cc(ConfChangeType.AddLearner, 4));
    expect(() => c.get(1).node.proposeConfChange(cc(ConfChangeType.AddLearner, 5))).toThrow(/another membership change/);
  });

  test('a new leader proposes no change before it commits an entry of its own term', () => {
    const c = new Cluster([1, 2, 3]);
    c.filter = (m) => m.type !== MessageType.App;
    c.campaign(1);
    expect(() => c.get(1).node.proposeConfChange(cc(ConfChangeType.AddLearner, 4))).toThrow(/not yet committed an entry in its term/);
  });

  test.each([
    ['adding an existing voter', ConfChangeType.AddVoter, 2, /already a voter/],
    ['removing an unknown node', ConfChangeType.RemoveNode, 9, /not a member/],
    ['demoting a voter to learner', ConfChangeType.AddLearner, 3, /is a voter/],
  ])('invalid changes are refused: %s', (_name, type, id, msg) => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    expect(() => c.get(1).node.proposeConfChange(cc(type, id))).toThrow(msg);
  });

  test('removing a follower shrinks the quorum', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    change(c, 1, ConfChangeType.RemoveNode, 3);
    expect(c.get(1).node.status().config.voters).toEqual([1, 2]);
    expect(c.get(1).node.status().progress!.has(3)).toBe(false);
    c.isolate(3);
    c.propose(1, 'two-voters');
    expect(c.appliedData(2)).toEqual(['two-voters']);
  });

  test('removing the leader: it steps down once the change commits and a successor is elected at once', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    change(c, 1, ConfChangeType.RemoveNode, 1);
    expect(c.get(1).node.status().softState.role).toBe(StateRole.Follower);
    const successor = c.leader();
    expect([2, 3]).toContain(successor);
    expect(c.get(successor).node.status().config.voters).toEqual([2, 3]);
    c.propose(successor, 'after-removal');
    expect(c.appliedData(2)).toContain('after-removal');
    expect(c.appliedData(3)).toContain('after-removal');
    // The removed node never campaigns again.
    c.tick(1, 50);
    expect(c.get(1).node.status().softState.role).toBe(StateRole.Follower);
  });

  test('a configuration entry that is overwritten on a follower no longer applies there', () => {
    const c = new Cluster([1, 2, 3, 4, 5]);
    c.campaign(1);
    // Leader 1 appends "add learner 6" but only node 2 receives it.
    for (const id of [3, 4, 5]) c.cutLink(1, id);
    change(c, 1, ConfChangeType.AddLearner, 6);
    expect(c.get(2).node.status().config.learners).toEqual([6]);
    // One of 3, 4, 5 is elected without that entry (once their leader lease has run out),
    // and overwrites it on node 2.
    c.heal();
    c.isolate(1);
    c.isolate(2);
    const newLeader = () => [3, 4, 5].find((id) => c.get(id).node.status().softState.role === StateRole.Leader);
    for (let i = 0; i < 100 && !newLeader(); i++) c.tickAll();
    const l = newLeader()!;
    expect(l).toBeDefined();
    c.heal();
    c.isolate(1);
    c.propose(l, 'x');
    c.tick(l, 2); // node 2's probe was paused while it was cut off; a heartbeat resumes it
    expect(c.appliedData(2)).toEqual(['x']);
    expect(c.get(2).node.status().config).toEqual({ voters: [1, 2, 3, 4, 5], learners: [] });
  });

  test('a removed follower receives the entry that removes it, then never campaigns', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    change(c, 1, ConfChangeType.RemoveNode, 3);
    c.tick(1); // the commit reaches the others
    expect(c.get(3).node.status().config.voters).toEqual([1, 2]);
    expect(c.get(1).node.status().progress!.has(3)).toBe(false);
    const before = c.delivered.length;
    c.tick(3, 100);
    expect(c.delivered.slice(before).some((m) => m.from === 3 && (m.type === MessageType.PreVote || m.type === MessageType.Vote))).toBe(false);
    expect(c.leader()).toBe(1);
  });
  test('a voter removed by an entry it has not seen commit still campaigns, and wins where only its log can (thesis §4.2.2)', () => {
    const c = new Cluster([1, 3]);
    c.campaign(1);
    const removal = c.get(1).storage.lastIndex() + 1;
    // Node 3 receives its removal, but never the commit index that covers it.
    c.filter = (m) => !(m.to === 3 && m.commit >= removal);
    change(c, 1, ConfChangeType.RemoveNode, 3);
    expect(c.get(3).storage.lastIndex()).toBe(removal);
    expect(c.get(3).node.status().config.voters).toEqual([1]);
    expect(c.get(3).node.status().hardState.commit).toBeLessThan(removal);
    // The leader crashes having sent the entry but before it reached its own disk: it comes
    // back with configuration [1, 3], and node 3, which holds the newer log, refuses it.
    const old = c.get(1).storage;
    const lost = new MemoryStorage();
    lost.append(old.entries(old.firstIndex(), removal));
    lost.setHardState({ ...old.initialState().hardState, commit: removal - 1 });
    c.add(1, lost, 11, removal - 1);
    c.filter = null;
    for (let i = 0; i < 60 && c.get(1).storage.lastIndex() < removal + 1; i++) {
      c.tick(1);
      c.tick(3);
    }
    // Node 3 led with node 1's vote (the only voter of its configuration), committed its own
    // removal on node 1, and handed over.
    expect(c.get(1).storage.lastIndex()).toBeGreaterThan(removal);
    expect(c.get(1).node.status().config.voters).toEqual([1]);
    expect(c.get(1).node.status().hardState.commit).toBeGreaterThan(removal);
    for (let i = 0; i < 30 && c.leader() !== 1; i++) c.tick(1);
    expect(c.leader()).toBe(1);
  });
});
