import { MemoryStorage } from '../../../agent/raft/memory_storage';
import { RawNode } from '../../../agent/raft/rawnode';
import { SeededRng } from '../../../agent/raft/rng';
import { Message, MessageType, StateRole, emptyMessage } from '../../../agent/raft/types';
import { Cluster, storageWithLog } from './harness';

/** A lone follower over the given storage, to step vote requests into by hand. */
function follower(storage: MemoryStorage, opts: { preVote?: boolean; checkQuorum?: boolean } = {}): RawNode {
  return new RawNode({ id: 1, storage, rng: new SeededRng(1), electionTick: 10, heartbeatTick: 1, ...opts });
}

function voteReq(from: number, term: number, lastIndex: number, lastTerm: number, type = MessageType.Vote): Message {
  const m = emptyMessage(type, 1, from, term);
  m.index = lastIndex;
  m.logTerm = lastTerm;
  return m;
}

function responses(n: RawNode): Message[] {
  const rd = n.ready();
  n.advance(rd);
  return rd.messages;
}

describe('leader election (§5.2)', () => {
  test('a follower grants one vote per term, to the first up-to-date candidate', () => {
    const n = follower(storageWithLog([1, 2, 3], [1, 1]), { checkQuorum: false });
    responses(n);
    n.step(voteReq(2, 2, 5, 1));
    let out = responses(n);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ type: MessageType.VoteResp, to: 2, term: 2, reject: false });
    // A second candidate in the same term is refused...
    n.step(voteReq(3, 2, 5, 1));
    out = responses(n);
    expect(out[0]).toMatchObject({ type: MessageType.VoteResp, to: 3, reject: true });
    // ...but the same candidate asking again (a retransmission) gets the vote again.
    n.step(voteReq(2, 2, 5, 1));
    expect(responses(n)[0]).toMatchObject({ to: 2, reject: false });
  });

  test('the vote is in the same Ready as the response and must be synced before it is sent', () => {
    const n = follower(storageWithLog([1, 2, 3], [1]), { checkQuorum: false });
    responses(n);
    n.step(voteReq(2, 5, 4, 1));
    const rd = n.ready();
    expect(rd.hardState).toMatchObject({ term: 5, vote: 2 });
    expect(rd.mustSync).toBe(true);
    expect(rd.messages.map((m) => m.type)).toEqual([MessageType.VoteResp]);
  });

  // §5.4.1: the voter denies its vote if its own log is more up to date than the candidate's.
  // Voter log: bootstrap (3 entries, term 1) + entries of terms [1, 2, 2] => last (6, 2).
  test.each([
    ['higher last term, shorter log', 4, 3, false],
    ['same last term, longer log', 7, 2, false],
    ['same last term, same length', 6, 2, false],
    ['same last term, shorter log', 5, 2, true],
    ['lower last term, longer log', 9, 1, true],
  ])('up-to-date check: candidate with %s (last index %i, last term %i) -> rejected=%s', (_name, lastIndex, lastTerm, rejected) => {
    const n = follower(storageWithLog([1, 2, 3], [1, 2, 2]), { checkQuorum: false });
    responses(n);
    n.step(voteReq(2, 3, lastIndex, lastTerm));
    expect(responses(n)[0]).toMatchObject({ type: MessageType.VoteResp, reject: rejected });
  });

  test('election timeouts are randomized in [electionTick, 1.25*electionTick) from the seeded generator', () => {
    const timeouts = new Set<number>();
    for (let seed = 1; seed <= 30; seed++) {
      const storage = storageWithLog([1, 2, 3], []);
      const n = new RawNode({ id: 1, storage, rng: new SeededRng(seed), electionTick: 10, heartbeatTick: 1 });
      let ticks = 0;
      while (n.status().softState.role === StateRole.Follower) {
        n.tick();
        ticks++;
        expect(ticks).toBeLessThan(13);
      }
      expect(ticks).toBeGreaterThanOrEqual(10);
      timeouts.add(ticks);
    }
    expect(timeouts.size).toBe(3); // every value of the range (a spread of ceil(10 / 4) ticks) is drawn
  });

  test('timing out again without hearing from a leader widens the spread (1/4, 1/2, then a whole timeout); a leader narrows it again', () => {
    /** Ticks until the node next sends pre-votes: it campaigns, alone, and never wins. */
    const untilCampaign = (n: RawNode): number => {
      for (let t = 1; t <= 100; t++) {
        n.tick();
        if (responses(n).some((m) => m.type === MessageType.PreVote)) return t;
      }
      throw new Error('no campaign within 100 ticks');
    };
    const gaps: number[][] = [[], [], [], [], []];
    for (let seed = 1; seed <= 60; seed++) {
      const n = new RawNode({ id: 1, storage: storageWithLog([1, 2, 3], []), rng: new SeededRng(seed), electionTick: 10, heartbeatTick: 1 });
      for (let k = 0; k < 4; k++) gaps[k].push(untilCampaign(n));
      // A leader is heard from: the next timeout is drawn from the narrow spread again.
      n.step(emptyMessage(MessageType.Heartbeat, 1, 2, n.status().hardState.term));
      expect(n.status().softState).toMatchObject({ role: StateRole.Follower, lead: 2 });
      responses(n);
      gaps[4].push(untilCampaign(n));
    }
    const within = (g: number[], lo: number, hi: number) => {
      expect(Math.min(...g)).toBeGreaterThanOrEqual(lo);
      expect(Math.max(...g)).toBeLessThan(hi);
    };
    within(gaps[0], 10, 13);
    within(gaps[1], 10, 16); // twice ceil(10 / 4)
    within(gaps[2], 10, 20);
    within(gaps[3], 10, 20);
    within(gaps[4], 10, 13);
    // The wider draws do reach past the narrower ranges.
    expect(Math.max(...gaps[1])).toBeGreaterThanOrEqual(13);
    expect(Math.max(...gaps[2], ...gaps[3])).toBeGreaterThanOrEqual(16);
  });

  test('the same seed gives the same timeout (determinism)', () => {
    const ticksFor = (seed: number) => {
      const n = new RawNode({ id: 1, storage: storageWithLog([1, 2, 3], []), rng: new SeededRng(seed), electionTick: 10, heartbeatTick: 1 });
      let t = 0;
      while (n.status().softState.role === StateRole.Follower) {
        n.tick();
        t++;
      }
      return t;
    };
    expect(ticksFor(42)).toBe(ticksFor(42));
  });

  test('a candidate with a stale log cannot win; an up-to-date one can', () => {
    const c = Cluster.withLogs({ 1: [1], 2: [1, 2], 3: [1, 2] });
    c.campaign(1);
    expect(c.leader()).toBe(0);
    expect(c.get(1).node.status().softState.role).not.toBe(StateRole.Leader);
    c.campaign(2);
    expect(c.leader()).toBe(2);
  });

  test('a leader that sees a higher term steps down', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false });
    c.campaign(1);
    expect(c.leader()).toBe(1);
    c.isolate(1);
    c.campaign(2);
    expect(c.get(2).node.status().softState.role).toBe(StateRole.Leader);
    c.heal();
    c.tick(2); // heartbeat from the new leader reaches the old one
    expect(c.get(1).node.status().softState).toMatchObject({ role: StateRole.Follower, lead: 2 });
    expect(c.leader()).toBe(2);
  });

  test('a single-voter cluster elects itself and commits alone', () => {
    const c = new Cluster([1]);
    c.campaign(1);
    expect(c.leader()).toBe(1);
    c.propose(1, 'solo');
    expect(c.appliedData(1)).toEqual(['solo']);
  });
});

describe('pre-vote (thesis §9.6)', () => {
  test('an isolated node does not inflate its term, and does not disrupt the leader when it returns', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    const term = c.get(1).node.status().hardState.term;
    c.isolate(3);
    c.tick(3, 100); // many election timeouts alone
    expect(c.get(3).node.status().hardState.term).toBe(term);
    expect(c.get(3).node.status().softState.role).toBe(StateRole.PreCandidate);
    c.heal();
    c.tickAll(3);
    expect(c.leader()).toBe(1);
    expect(c.get(1).node.status().hardState.term).toBe(term);
  });

  test('without pre-vote the same isolated node does inflate its term (the problem pre-vote solves)', () => {
    const c = new Cluster([1, 2, 3], { preVote: false });
    c.campaign(1);
    const term = c.get(1).node.status().hardState.term;
    c.isolate(3);
    c.tick(3, 100);
    expect(c.get(3).node.status().hardState.term).toBeGreaterThan(term + 3);
  });

  test('a pre-vote is granted without changing the voter\'s term or vote', () => {
    const n = follower(storageWithLog([1, 2, 3], [1]), { checkQuorum: false });
    responses(n);
    n.step(voteReq(2, 5, 4, 1, MessageType.PreVote));
    const rd = n.ready();
    expect(rd.messages[0]).toMatchObject({ type: MessageType.PreVoteResp, term: 5, reject: false });
    expect(rd.hardState).toBeNull();
    n.advance(rd);
    expect(n.status().hardState).toMatchObject({ term: 1, vote: 0 });
  });

  test('a pre-candidate with a stale log never becomes a candidate, and learns the current term', () => {
    const c = Cluster.withLogs({ 1: [1], 2: [1, 2], 3: [1, 2] });
    c.campaign(1);
    expect(c.get(1).node.status().softState.role).toBe(StateRole.Follower);
    // It adopts the voters' term (2) from their rejections, but never campaigned in term 3.
    expect(c.get(1).node.status().hardState.term).toBe(2);
    expect(c.delivered.filter((m) => m.type === MessageType.Vote)).toHaveLength(0);
  });
});

describe('check-quorum (thesis §6.2)', () => {
  test('a leader that has not heard from a quorum within an election timeout steps down', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    c.isolate(1);
    // Checks run once per election timeout; the followers were heard from just before the
    // partition, so the first check passes and the second one (tick 20) must not.
    c.tick(1, 19);
    expect(c.get(1).node.status().softState.role).toBe(StateRole.Leader);
    c.tick(1, 1);
    expect(c.get(1).node.status().softState.role).toBe(StateRole.Follower);
  });

  test('a leader that hears from one follower of two keeps leading', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    c.isolate(3);
    c.tick(1, 50);
    expect(c.get(1).node.status().softState.role).toBe(StateRole.Leader);
  });

  test.each([
    [true, 'ignores'],
    [false, 'accepts'],
  ])('with checkQuorum=%s a follower that just heard from its leader %s a higher-term vote request', (checkQuorum) => {
    const c = new Cluster([1, 2, 3], { checkQuorum, preVote: false });
    c.campaign(1);
    c.tick(1); // a heartbeat renews node 2's lease
    const term = c.get(2).node.status().hardState.term;
    const disruptive = voteReq(3, term + 5, 100, term + 4);
    disruptive.to = 2;
    c.stepInto(disruptive);
    const out = c.takeMessages(2);
    if (checkQuorum) {
      expect(out.filter((m) => m.type === MessageType.VoteResp)).toHaveLength(0);
      expect(c.get(2).node.status().hardState.term).toBe(term);
      expect(c.get(2).node.status().softState.lead).toBe(1);
    } else {
      expect(out.find((m) => m.type === MessageType.VoteResp)).toMatchObject({ reject: false, term: term + 5 });
      expect(c.get(2).node.status().hardState.term).toBe(term + 5);
    }
  });
});

describe('timeouts changed at run time (configuration reload)', () => {
  test('a longer election timeout delays the next election accordingly', () => {
    const n = new RawNode({ id: 1, storage: storageWithLog([1, 2, 3], []), rng: new SeededRng(3), electionTick: 10, heartbeatTick: 1 });
    n.setTimeouts(50, 1);
    let ticks = 0;
    while (n.status().softState.role === StateRole.Follower) {
      n.tick();
      ticks++;
    }
    expect(ticks).toBeGreaterThanOrEqual(50);
    expect(ticks).toBeLessThan(75);
    expect(() => n.setTimeouts(1, 1)).toThrow(/greater than heartbeatTick/);
  });
});

describe('forgetting a crashed leader (fast failover)', () => {
  test('followers that forget the leader elect a new one within one election timeout', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    c.isolate(1); // the leader is gone
    c.get(2).node.forgetLeader();
    c.get(3).node.forgetLeader();
    // (The isolated old leader still believes it leads; it steps down when it hears the new term.)
    const successor = () => [2, 3].some((id) => c.get(id).node.status().softState.role === StateRole.Leader);
    let ticks = 0;
    while (!successor()) {
      c.tick(2);
      c.tick(3);
      ticks++;
      expect(ticks).toBeLessThan(10);
    }
  });

  test('a follower that forgets its leader is still refused by a voter that hears from a live leader', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    c.get(2).node.forgetLeader(); // node 2 alone thinks the leader is gone
    for (let i = 0; i < 10; i++) c.tick(2);
    expect(c.leader()).toBe(1);
    expect(c.get(3).node.status().softState.lead).toBe(1);
  });

  test('the follower with the newest entry, ignored while the other still held the lease, campaigns again as soon as the other asks it for a vote', () => {
    // After the crash, each seed draws other timeouts; without the early campaign every seed
    // waits for node 2's next election timeout (40 ticks after its first campaign).
    const ticksToLeader: number[] = [];
    for (let seed = 1; seed <= 20; seed++) {
      const c = new Cluster([1, 2, 3], { electionTick: 40, preVote: true, checkQuorum: true }, seed);
      c.campaign(1);
      c.cutLink(1, 3);
      expect(c.propose(1, 'only node 2 has this')).not.toBeNull();
      c.settle();
      c.isolate(1); // the leader crashes; node 2 notices first
      c.get(2).node.forgetLeader();
      let ticks = 0;
      while (c.get(2).node.status().softState.role !== StateRole.PreCandidate) {
        c.tick(2);
        ticks++;
      }
      // Node 3 still held the lease and ignored node 2's pre-vote; now it notices too, and
      // campaigns with a log behind node 2's: refused.
      c.get(3).node.forgetLeader();
      // (The isolated old leader still believes it leads.)
      const successor = () => [2, 3].find((id) => c.get(id).node.status().softState.role === StateRole.Leader);
      while (successor() === undefined) {
        c.tick(2);
        c.tick(3);
        ticks++;
        expect(ticks).toBeLessThan(200);
      }
      expect(successor()).toBe(2);
      ticksToLeader.push(ticks);
    }
    expect(Math.max(...ticksToLeader)).toBeLessThan(40);
  });
});

describe('election timer (Figure 2)', () => {
  test('a refused higher-term vote request does not restart the timer', () => {
    const campaignTicks: number[] = [];
    for (let seed = 1; seed <= 20; seed++) {
      // Node 1's log is ahead of the stale candidate's, so the vote is refused.
      const n = new RawNode({ id: 1, storage: storageWithLog([1, 2, 3], [1, 2]), rng: new SeededRng(seed), electionTick: 10, heartbeatTick: 1, preVote: false, checkQuorum: false });
      for (let i = 0; i < 9; i++) n.tick();
      n.step(voteReq(2, 7, 3, 1));
      expect(n.status().hardState).toMatchObject({ term: 7, vote: 0 });
      let t = 9;
      while (n.status().softState.role === StateRole.Follower) {
        n.tick();
        t++;
        expect(t).toBeLessThan(40);
      }
      campaignTicks.push(t);
    }
    // Restarted at tick 9, no campaign could come before tick 19; kept, most come earlier.
    expect(Math.max(...campaignTicks)).toBeLessThan(20);
    expect(campaignTicks.some((t) => t < 19)).toBe(true);
  });
  test('a message of a lower term is answered with the current term, even without pre-vote or check-quorum (Figure 2)', () => {
    const n = follower(storageWithLog([1, 2, 3], [1], { term: 7 }), { preVote: false, checkQuorum: false });
    responses(n);
    n.step(voteReq(2, 5, 9, 5));
    expect(responses(n)).toEqual([expect.objectContaining({ type: MessageType.VoteResp, to: 2, term: 7, reject: true })]);
    const app = emptyMessage(MessageType.App, 1, 3, 4);
    n.step(app);
    expect(responses(n)).toEqual([expect.objectContaining({ type: MessageType.AppResp, to: 3, term: 7 })]);
    expect(n.status().hardState).toMatchObject({ term: 7, vote: 0 });
  });

  test('a candidate that is refused by a higher term adopts it and can then win', () => {
    // Node 3 holds the newest log but campaigns in a lower term than node 2, which never asks
    // it for a vote (as when their configurations disagree): only the refusal carries the term.
    const c = Cluster.withLogs({ 1: [1], 2: [1], 3: [1, 2] }, { preVote: false, checkQuorum: false });
    c.isolate(1);
    c.filter = (m) => !(m.type === MessageType.Vote && m.from === 2 && m.to === 3);
    for (let i = 0; i < 5; i++) c.campaign(2);
    expect(c.get(3).node.status().hardState.term).toBe(2);
    const high = c.get(2).node.status().hardState.term;
    c.campaign(3);
    expect(c.get(3).node.status().hardState.term).toBe(high);
    c.campaign(3);
    expect(c.leader()).toBe(3);
  });
});
