import { CommitBeyondLogError } from '../../../agent/raft/log';
import { MemoryStorage } from '../../../agent/raft/memory_storage';
import { ProposalDroppedError, bootstrapLog } from '../../../agent/raft/rawnode';
import { MessageType, StateRole } from '../../../agent/raft/types';
import { Cluster } from './harness';

const BOOT = 3; // bootstrap entries of a 3-voter cluster

describe('log replication (§5.3)', () => {
  // Figure 7: followers with missing, extra and conflicting entries all converge on the leader's log.
  test('divergent followers converge on the leader\'s log (Figure 7)', () => {
    const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    const c = Cluster.withLogs({
      1: leaderLog,
      2: [1, 1, 1, 4, 4, 5, 5, 6, 6], // (a) missing one
      3: [1, 1, 1, 4], // (b) missing many
      4: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6], // (c) one extra uncommitted entry
      5: [1, 1, 1, 4, 4, 4, 4], // (e) conflicting tail of term 4
      6: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], // (f) long conflicting tail of terms 2-3
    });
    c.campaign(1);
    expect(c.leader()).toBe(1);
    c.propose(1, 'after');
    const want = c.get(1).storage.entries(1, c.get(1).storage.lastIndex() + 1).map((e) => `${e.index}:${e.term}`);
    for (const id of [2, 3, 4, 5, 6]) {
      const st = c.get(id).storage;
      expect(st.entries(1, st.lastIndex() + 1).map((e) => `${e.index}:${e.term}`)).toEqual(want);
      expect(c.appliedData(id).at(-1)).toBe('after');
    }
  });

  test('fast back-off: a long conflicting log is repaired in one rejection per term, not per entry', () => {
    const conflicting = [1, ...Array(40).fill(2), ...Array(40).fill(3)];
    const c = Cluster.withLogs({ 1: [1, 4, 4], 2: [1, 4, 4], 3: conflicting });
    c.campaign(1);
    const rejections = c.delivered.filter((m) => m.type === MessageType.AppResp && m.from === 3 && m.reject);
    expect(rejections.length).toBeGreaterThan(0);
    expect(rejections.length).toBeLessThanOrEqual(3);
    expect(c.get(3).storage.lastIndex()).toBe(c.get(1).storage.lastIndex());
    expect(c.get(3).storage.term(BOOT + 2)).toBe(4);
  });

  // Figure 8: an entry from an earlier term is never committed by counting replicas.
  test('a leader does not commit an earlier term\'s entry by counting replicas (§5.4.2, Figure 8)', () => {
    // Node 1 holds an entry of term 2 at index 5 that node 3 lacks; node 1 is elected in term 3.
    // One entry per message, so the term-2 entry can reach node 3 without the term-3 one.
    const c = Cluster.withLogs({ 1: [1, 2], 2: [1], 3: [1] }, { maxSizePerMsg: 1 });
    // The new leader's own term-3 entry is lost on the way (stripped from every append).
    c.filter = (m) => {
      if (m.type === MessageType.App) m.entries = m.entries.filter((e) => e.term !== 3);
      return true;
    };
    c.campaign(1);
    expect(c.get(1).node.status().hardState.term).toBe(3);
    expect(c.leader()).toBe(1);
    // Index 5 (term 2) is now on nodes 1 and 3, a majority; it must still not count as committed.
    expect(c.get(3).storage.lastIndex()).toBe(BOOT + 2);
    expect(c.get(3).storage.term(BOOT + 2)).toBe(2);
    expect(c.get(1).node.status().hardState.commit).toBe(BOOT);
    c.heal();
    c.tick(1);
    // Once the current term's entry is on a majority, both commit together.
    expect(c.get(1).node.status().hardState.commit).toBe(BOOT + 3);
  });

  test('proposals made between two ready() calls go out as one append per follower (batching)', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    const n = c.get(1).node;
    for (let i = 0; i < 50; i++) n.propose(new TextEncoder().encode(`k${i}`));
    const apps = c.takeMessages(1).filter((m) => m.type === MessageType.App);
    expect(apps.map((m) => m.to).sort()).toEqual([2, 3]);
    for (const m of apps) expect(m.entries).toHaveLength(50);
  });

  test('appends are pipelined up to the inflight window without waiting for replies', () => {
    const c = new Cluster([1, 2, 3], { maxInflightMsgs: 4, maxSizePerMsg: 1 });
    c.campaign(1);
    c.drop(MessageType.AppResp); // followers' replies never arrive
    for (let i = 0; i < 20; i++) c.propose(1, `v${i}`);
    const toFollower2 = c.delivered.filter((m) => m.type === MessageType.App && m.to === 2 && m.entries.length > 0);
    const sentAfterElection = toFollower2.filter((m) => m.entries[0].data.length > 0);
    // Exactly the window: 4 appends in flight, the rest held back.
    expect(sentAfterElection).toHaveLength(4);
    expect(c.get(1).node.status().progress!.get(2)!.inflight).toBe(4);
    c.heal();
    c.tickAll(2);
    expect(c.appliedData(2)).toHaveLength(20);
  });

  test('a follower forwards proposals to the leader; with no leader a proposal is refused', () => {
    const c = new Cluster([1, 2, 3]);
    expect(() => c.get(2).node.propose(new Uint8Array([1]))).toThrow(ProposalDroppedError);
    c.campaign(1);
    expect(c.propose(2, 'via-follower')).toBeNull();
    expect(c.appliedData(3)).toEqual(['via-follower']);
  });

  test('the leader counts itself only once its entries are durable (advance)', () => {
    const c = new Cluster([1]);
    c.campaign(1);
    const n = c.get(1).node;
    const r = n.propose(new TextEncoder().encode('x'))!;
    const rd = n.ready();
    expect(rd.entries.map((e) => e.index)).toEqual([r.index]);
    // Not committed in the same Ready that carries it to disk.
    expect(rd.committedEntries.map((e) => e.index)).not.toContain(r.index);
    c.get(1).storage.append(rd.entries);
    n.advance(rd);
    const rd2 = n.ready();
    expect(rd2.committedEntries.map((e) => e.index)).toContain(r.index);
    n.advance(rd2);
  });

  test('a crashed follower that lost nothing durable catches up after restart', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    c.isolate(3);
    for (let i = 0; i < 5; i++) c.propose(1, `w${i}`);
    c.restart(3);
    c.heal();
    c.tickAll(3);
    expect(c.get(3).storage.lastIndex()).toBe(c.get(1).storage.lastIndex());
    expect(c.get(3).node.status().softState.role).toBe(StateRole.Follower);
  });
  test('a commit advance is not broadcast on its own: the next append carries it, or broadcastCommit()', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    c.flushCommits = false;
    const before = c.delivered.length;
    c.propose(1, 'a');
    const leader = c.get(1).node;
    const commitA = leader.status().hardState.commit;
    expect(c.appliedData(1)).toEqual(['a']);
    // One append per follower and one answer each; no empty append to announce the commit.
    const sent = c.delivered.slice(before);
    expect(sent.filter((m) => m.type === MessageType.App).map((m) => m.entries.length)).toEqual([1, 1]);
    expect(c.appliedData(2)).toEqual([]);
    expect(leader.commitBroadcastPending()).toBe(true);
    // The next write's append tells the followers that 'a' committed.
    c.propose(1, 'b');
    expect(c.appliedData(2)).toEqual(['a']);
    expect(c.get(2).node.status().hardState.commit).toBe(commitA);
    // The driver's flush tells them about 'b', once, with an empty append.
    expect(leader.commitBroadcastPending()).toBe(true);
    const mark = c.delivered.length;
    leader.broadcastCommit();
    c.settle();
    const flush = c.delivered.slice(mark).filter((m) => m.type === MessageType.App);
    expect(flush.map((m) => [m.to, m.entries.length, m.commit])).toEqual([
      [2, 0, commitA + 1],
      [3, 0, commitA + 1],
    ]);
    for (const id of [2, 3]) expect(c.appliedData(id)).toEqual(['a', 'b']);
    expect(leader.commitBroadcastPending()).toBe(false);
  });

  test('a follower whose forwarded proposal commits is told at once; the other follower waits', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    c.flushCommits = false;
    const before = c.delivered.length;
    c.propose(2, 'via 2');
    const index = c.get(1).node.status().hardState.commit;
    expect(c.appliedData(1)).toEqual(['via 2']);
    // Node 2's client waits for node 2 to apply its write: an empty append brings the commit.
    expect(c.appliedData(2)).toEqual(['via 2']);
    expect(c.get(2).node.status().hardState.commit).toBe(index);
    const told = c.delivered.slice(before).filter((m) => m.type === MessageType.App && m.entries.length === 0);
    expect(told.map((m) => [m.to, m.commit])).toEqual([[2, index]]);
    // Node 3 proposed nothing: it learns of the commit lazily, as for the leader's own writes.
    expect(c.appliedData(3)).toEqual([]);
    expect(c.get(1).node.commitBroadcastPending()).toBe(true);
    // Told once: the leader's next write does not send node 2 another empty append.
    const mark = c.delivered.length;
    c.propose(1, 'on 1');
    expect(c.delivered.slice(mark).filter((m) => m.type === MessageType.App && m.entries.length === 0)).toEqual([]);
    expect(c.appliedData(3)).toEqual(['via 2']);
  });

  test('a follower that lost entries it acknowledged learns it from the leader\'s heartbeat: a CommitBeyondLogError', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    for (let i = 0; i < 5; i++) c.propose(1, `v${i}`);
    const acked = c.get(1).node.status().progress!.get(3)!.match;
    expect(acked).toBeGreaterThan(BOOT + 5);
    // Node 3 comes back with nothing but the bootstrap entries (its data directory emptied).
    const fresh = new MemoryStorage();
    const boot = bootstrapLog([1, 2, 3]);
    fresh.append(boot.entries);
    fresh.setHardState(boot.hardState);
    c.add(3, fresh, 99);
    c.get(1).node.tick(); // heartbeat tick: 1
    const beat = c.takeMessages(1).find((m) => m.to === 3 && m.type === MessageType.Heartbeat)!;
    expect(beat.commit).toBe(acked);
    let thrown: unknown;
    try {
      c.stepInto(beat);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(CommitBeyondLogError);
    expect(thrown).toMatchObject({ commit: acked, lastIndex: BOOT });
  });
});

