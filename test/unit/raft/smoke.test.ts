import { Cluster } from './harness';

describe('smoke', () => {
  test('three nodes elect a leader and commit a proposal everywhere', () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    expect(c.leader()).toBe(1);
    const r = c.propose(1, 'x=1');
    expect(r).not.toBeNull();
    for (const id of [1, 2, 3]) expect(c.appliedData(id)).toEqual(['x=1']);
  });
});
