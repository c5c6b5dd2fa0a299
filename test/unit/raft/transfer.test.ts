import { ProposalDroppedError } from '../../../agent/raft/rawnode';
import { MessageType, StateRole } from '../../../agent/raft/types';
import { Cluster } from './harness';

describe('leadership transfer (thesis §3.10)', () => {
  test('to an up-to-date follower: it is told to campaign at once and wins the next term', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    const term = c.get(1).node.status().hardState.term;
    c.get(1).node.transferLeadership(3);
    c.settle();
    expect(c.leader()).toBe(3);
    expect(c.get(3).node.status().hardState.term).toBe(term + 1);
    expect(c.delivered.some((m) => m.type === MessageType.TimeoutNow && m.to === 3)).toBe(true);
  });

  test('to a lagging follower: the leader first catches it up, then hands over', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    c.isolate(3);
    for (let i = 0; i < 5; i++) c.propose(1, `w${i}`);
    c.heal();
    c.get(1).node.transferLeadership(3);
    c.settle();
    expect(c.leader()).toBe(3);
    expect(c.appliedData(3).slice(0, 5)).toEqual(['w0', 'w1', 'w2', 'w3', 'w4']);
  });

  test('proposals are refused while a transfer is under way, and accepted once it is abandoned', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    c.isolate(3); // the target never answers
    c.get(1).node.transferLeadership(3);
    c.settle();
    expect(c.get(1).node.status().leadTransferee).toBe(3);
    expect(() => c.get(1).node.propose(new Uint8Array([1]))).toThrow(/transferred/);
    c.tick(1, 10); // one election timeout
    expect(c.get(1).node.status().leadTransferee).toBe(0);
    expect(c.get(1).node.status().softState.role).toBe(StateRole.Leader);
    expect(c.propose(1, 'after-abort')).not.toBeNull();
  });

  test('a follower forwards a transfer request to the leader', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    c.get(2).node.transferLeadership(2);
    c.settle();
    expect(c.leader()).toBe(2);
  });

  test('the target campaigns even inside the other voters\' leader lease', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    c.tick(1); // everyone just heard from the leader
    c.get(1).node.transferLeadership(2);
    c.settle();
    expect(c.leader()).toBe(2);
  });

  test('a learner cannot be made leader', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    c.get(1).node.proposeConfChange({ type: 1, nodeId: 4, context: new Uint8Array(0) });
    c.settle();
    c.add(4);
    c.tick(1);
    expect(() => c.get(1).node.transferLeadership(4)).toThrow(ProposalDroppedError);
    expect(c.leader()).toBe(1);
  });
});
