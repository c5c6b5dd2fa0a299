import { ProposalDroppedError } from '../../../agent/raft/rawnode';
import { MessageType } from '../../../agent/raft/types';
import { Cluster } from './harness';

const ctx = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe('linearizable reads through ReadIndex (thesis §6.4)', () => {
  test('the leader answers with its commit index after one heartbeat round with a quorum', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    c.propose(1, 'a');
    const commit = c.get(1).node.status().hardState.commit;
    const before = c.delivered.length;
    c.get(1).node.readIndex(ctx('r1'));
    c.settle();
    const round = c.delivered.slice(before);
    expect(round.filter((m) => m.type === MessageType.Heartbeat && text(m.context!) === 'r1')).toHaveLength(2);
    expect(c.get(1).readStates).toEqual([{ index: commit, context: ctx('r1') }]);
  });

  test('a leader cut off from the quorum never answers (it may have been deposed)', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    c.isolate(1);
    c.get(1).node.readIndex(ctx('stale'));
    c.settle();
    c.tick(1, 5);
    expect(c.get(1).readStates).toHaveLength(0);
  });

  test('one acknowledgement besides the leader is enough in a three-node cluster', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    c.isolate(3);
    c.get(1).node.readIndex(ctx('r'));
    c.settle();
    expect(c.get(1).readStates.map((r) => text(r.context))).toEqual(['r']);
  });

  test('a new leader answers only once it has committed an entry of its own term', () => {
    const c = new Cluster([1, 2, 3]);
    // The new leader's first entry does not reach anyone yet.
    c.filter = (m) => m.type !== MessageType.App;
    c.campaign(1);
    c.get(1).node.readIndex(ctx('early'));
    c.settle();
    expect(c.get(1).readStates).toHaveLength(0);
    c.heal();
    c.tick(1);
    expect(c.get(1).readStates.map((r) => text(r.context))).toEqual(['early']);
    expect(c.get(1).readStates[0].index).toBe(c.get(1).node.status().hardState.commit);
  });

  test('a follower\'s read is forwarded to the leader and answered to the follower', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    c.propose(1, 'a');
    c.get(3).node.readIndex(ctx('from-3'));
    c.settle();
    expect(c.get(3).readStates).toEqual([{ index: c.get(1).node.status().hardState.commit, context: ctx('from-3') }]);
    expect(c.get(1).readStates).toHaveLength(0);
  });

  test('a read with no known leader is refused', () => {
    const c = new Cluster([1, 2, 3]);
    expect(() => c.get(2).node.readIndex(ctx('x'))).toThrow(ProposalDroppedError);
  });

  test('a single-voter leader answers at once', () => {
    const c = new Cluster([1]);
    c.campaign(1);
    c.get(1).node.readIndex(ctx('solo'));
    c.settle();
    expect(c.get(1).readStates.map((r) => text(r.context))).toEqual(['solo']);
  });
});
