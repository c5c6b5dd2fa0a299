import { MemoryStorage } from '../../agent/raft/memory_storage';
import { emptyMessage, Entry, EntryType, HardState, MessageType, NodeId, StateRole } from '../../agent/raft/types';
import { InvariantViolation, SafetyChecker } from './invariants';
import { chainNext, encodeWrite, entryHash, KEYS, KvStateMachine } from './kv';

/**
 * The checker must be able to fail: each test feeds it a small hand-made history that breaks
 * one property and expects that property's violation, next to a correct history it accepts.
 */

function ent(index: number, term: number, data: Uint8Array = new Uint8Array(0)): Entry {
  return { index, term, type: EntryType.Normal, data };
}

/** A miniature cluster whose nodes are driven by hand, the way NodeDriver drives real ones. */
class History {
  readonly checker = new SafetyChecker(KEYS);
  readonly logs = new Map<NodeId, MemoryStorage>();
  readonly sms = new Map<NodeId, KvStateMachine>();

  constructor(ids: NodeId[]) {
    for (const id of ids) {
      const s = new MemoryStorage();
      this.logs.set(id, s);
      this.sms.set(id, new KvStateMachine());
      this.checker.nodeCreated(id, s);
      this.checker.nodeStarted(id);
    }
  }

  append(id: NodeId, entries: Entry[]): void {
    this.checker.entriesPersisting(id, entries);
    this.logs.get(id)!.append(entries);
    this.checker.entriesPersisted(id, entries);
  }

  hardState(id: NodeId, hs: HardState): void {
    this.logs.get(id)!.setHardState(hs);
    this.checker.hardStatePersisted(id, hs);
  }

  lead(id: NodeId, term: number): void {
    this.checker.roleObserved(id, StateRole.Leader, id, term);
  }

  apply(id: NodeId, e: Entry): void {
    const sm = this.sms.get(id)!;
    const chain = chainNext(sm.chain, entryHash(e));
    const w = sm.apply(e, chain);
    this.checker.entryApplied(id, e, chain, w);
  }

  read(id: NodeId, readId: number, index: number): void {
    const sm = this.sms.get(id)!;
    this.checker.readServed(id, readId, index, { applied: sm.applied, get: (k) => sm.values[k] });
  }
}

function violation(invariant: string, f: () => void): void {
  let caught: unknown = null;
  try {
    f();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(InvariantViolation);
  expect((caught as InvariantViolation).invariant).toBe(invariant);
}

/** Nodes 1..3 all hold entries 1..3 of term 1 and have committed them. */
function committedPrefix(): History {
  const h = new History([1, 2, 3]);
  for (const id of [1, 2, 3]) {
    h.append(id, [ent(1, 1), ent(2, 1, encodeWrite(100, 0)), ent(3, 1, encodeWrite(101, 0))]);
    h.hardState(id, { term: 1, vote: 1, commit: 3 });
  }
  return h;
}

describe('SafetyChecker', () => {
  test('accepts a correct history', () => {
    const h = committedPrefix();
    h.lead(1, 1);
    for (const id of [1, 2, 3]) for (let i = 1; i <= 3; i++) h.apply(id, h.logs.get(id)!.entries(i, i + 1)[0]);
    h.checker.readIssued(7, 2, 0);
    h.read(2, 7, 3);
    h.hardState(2, { term: 2, vote: 2, commit: 3 });
    h.lead(2, 2);
    h.append(2, [ent(4, 2)]);
    expect(h.checker.readsServed).toBe(1);
    expect(h.checker.leaderTerms).toBe(2);
  });

  test('election safety: two leaders in one term', () => {
    const h = committedPrefix();
    h.lead(1, 1);
    violation('election-safety', () => h.lead(2, 1));
  });

  test('a follower may only follow the leader of its term', () => {
    const h = committedPrefix();
    h.lead(1, 1);
    violation('follows-non-leader', () => h.checker.roleObserved(3, StateRole.Follower, 2, 1));
  });

  test('log matching: same (index, term), different content', () => {
    const h = committedPrefix();
    h.append(1, [ent(4, 2, encodeWrite(1, 1))]);
    violation('log-matching', () => h.append(2, [ent(4, 2, encodeWrite(2, 1))]));
  });

  test('log matching: same (index, term), different predecessor', () => {
    const h = new History([1, 2]);
    h.append(1, [ent(1, 1), ent(2, 1), ent(3, 2)]);
    h.append(2, [ent(1, 1), ent(2, 2)]);
    violation('log-matching', () => h.append(2, [ent(3, 2)]));
  });

  test('a node must not overwrite an entry it knows is committed', () => {
    const h = committedPrefix();
    violation('committed-overwrite', () => h.append(2, [ent(3, 2)]));
  });

  test('leader completeness: a new leader lacks a committed entry', () => {
    const h = new History([1, 2, 3]);
    for (const id of [1, 2, 3]) h.append(id, [ent(1, 1)]);
    h.append(1, [ent(2, 1)]);
    h.append(2, [ent(2, 1)]);
    h.hardState(1, { term: 1, vote: 1, commit: 2 });
    h.hardState(3, { term: 2, vote: 3, commit: 1 });
    violation('leader-completeness', () => h.lead(3, 2));
  });

  test('leader completeness: an entry committed in an earlier term reaches a later leader late', () => {
    const h = new History([1, 2, 3]);
    for (const id of [1, 2, 3]) h.append(id, [ent(1, 1)]);
    h.hardState(3, { term: 3, vote: 3, commit: 0 });
    h.lead(3, 3);
    h.append(1, [ent(2, 1)]);
    // Node 1 learns in term 1 that entry 2 is committed, but the leader of term 3 lacks it.
    violation('leader-completeness', () => h.hardState(1, { term: 1, vote: 1, commit: 2 }));
  });

  test('commit conflict: two nodes commit different entries at one index', () => {
    const h = new History([1, 2]);
    h.append(1, [ent(1, 1)]);
    h.append(2, [ent(1, 2)]);
    h.hardState(1, { term: 1, vote: 0, commit: 1 });
    violation('commit-conflict', () => h.hardState(2, { term: 2, vote: 0, commit: 1 }));
  });

  test('state machine safety: divergent apply', () => {
    const h = committedPrefix();
    h.apply(1, ent(1, 1));
    violation('state-machine-safety', () => h.apply(2, ent(1, 1, encodeWrite(5, 5))));
  });

  test('an entry is applied only once committed', () => {
    const h = new History([1]);
    h.append(1, [ent(1, 1)]);
    violation('applied-uncommitted', () => h.apply(1, ent(1, 1)));
  });

  test('durable commit decreases', () => {
    const h = committedPrefix();
    h.checker.nodeStopped(1);
    h.checker.nodeStarted(1);
    violation('commit-decreased', () => h.hardState(1, { term: 1, vote: 1, commit: 2 }));
  });

  test('commit index of a running node decreases', () => {
    const h = committedPrefix();
    violation('commit-decreased', () => h.checker.commitReported(2, 2, 1));
  });

  test('term regresses or a node votes twice in a term', () => {
    const h = committedPrefix();
    violation('term-regressed', () => h.hardState(1, { term: 0, vote: 0, commit: 3 }));
    violation('double-vote', () => h.hardState(2, { term: 1, vote: 3, commit: 3 }));
  });

  test('a vote or an acknowledgement leaves before it is durable', () => {
    const h = committedPrefix();
    const vote = emptyMessage(MessageType.VoteResp, 3, 2, 2);
    violation('vote-not-durable', () => h.checker.messageSent(2, vote));
    const ack = emptyMessage(MessageType.AppResp, 1, 2, 1);
    ack.index = 4;
    violation('ack-not-durable', () => h.checker.messageSent(2, ack));
  });

  test('a message leaves in a term that is not yet durable', () => {
    const h = committedPrefix();
    // A lone voter that won term 2 sends its heartbeat before term 2 is on disk.
    violation('term-not-durable', () => h.checker.messageSent(1, emptyMessage(MessageType.Heartbeat, 2, 1, 2)));
    violation('term-not-durable', () => h.checker.messageSent(2, emptyMessage(MessageType.AppResp, 1, 2, 2)));
    // A pre-vote names the term its sender would campaign in, without entering it.
    h.checker.messageSent(2, emptyMessage(MessageType.PreVote, 1, 2, 2));
    h.checker.messageSent(3, emptyMessage(MessageType.PreVoteResp, 2, 3, 2));
  });

  test('replies of an earlier term than the durable one are stale, not broken promises', () => {
    const h = committedPrefix();
    // Node 2 granted node 3 its vote in term 2 and then node 1 in term 3, in one batch: only
    // term 3 and its vote reach the disk before both replies leave.
    h.hardState(2, { term: 3, vote: 1, commit: 3 });
    h.checker.messageSent(2, emptyMessage(MessageType.VoteResp, 3, 2, 2));
    h.checker.messageSent(2, emptyMessage(MessageType.VoteResp, 1, 2, 3));
    violation('vote-not-durable', () => h.checker.messageSent(2, emptyMessage(MessageType.VoteResp, 3, 2, 3)));
    // It acknowledged entry 4 of term 2, which a leader of term 3 then overwrote.
    const stale = emptyMessage(MessageType.AppResp, 3, 2, 2);
    stale.index = 4;
    h.checker.messageSent(2, stale);
    const current = emptyMessage(MessageType.AppResp, 1, 2, 3);
    current.index = 4;
    violation('ack-not-durable', () => h.checker.messageSent(2, current));
  });

  test('stale read: read index below what was committed when the read was issued', () => {
    const h = committedPrefix();
    for (let i = 1; i <= 3; i++) h.apply(2, h.logs.get(2)!.entries(i, i + 1)[0]);
    h.checker.readIssued(9, 2, 0);
    violation('stale-read', () => h.read(2, 9, 2));
  });

  test('stale read: the value served is not the committed history at that index', () => {
    const h = committedPrefix();
    for (let i = 1; i <= 3; i++) h.apply(1, h.logs.get(1)!.entries(i, i + 1)[0]);
    for (let i = 1; i <= 3; i++) h.apply(2, h.logs.get(2)!.entries(i, i + 1)[0]);
    h.sms.get(2)!.values[0] = 100; // node 2's state machine lost write 101
    h.checker.readIssued(9, 2, 0);
    violation('stale-read', () => h.read(2, 9, 3));
  });

  test('a read state for a request the node never issued', () => {
    const h = committedPrefix();
    h.checker.readIssued(4, 1, 0);
    violation('read-unknown', () => h.read(2, 4, 3));
  });

  test('a snapshot must describe a committed prefix', () => {
    const h = committedPrefix();
    violation('snapshot-uncommitted', () =>
      h.checker.snapshotPersisted(2, { index: 3, term: 2, confState: { voters: [1, 2, 3], learners: [] } }),
    );
    violation('state-machine-safety', () => h.checker.snapshotRestored(2, 3, 12345));
  });
});
