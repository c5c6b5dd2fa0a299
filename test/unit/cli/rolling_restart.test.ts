import type { MemberView } from '../../../agent/http/status';
import { restartOrder, stepEnv } from '../../../agent/cli/rolling_restart';

function member(id: number, role: 'voter' | 'learner', leader = false): MemberView {
  return { id, raftAddress: `10.0.0.${id}:7001`, apiAddress: `10.0.0.${id}:7002`, role, leader, matchIndex: 10, lag: 0, lastContactMs: 5 };
}

test('learners go first, then the followers, the leader last; by id within each', () => {
  const members = [member(1, 'voter'), member(2, 'voter', true), member(3, 'voter'), member(4, 'learner'), member(5, 'voter')];
  expect(restartOrder(members, 2).map((s) => `${s.id} ${s.part}`)).toEqual(['4 learner', '1 follower', '3 follower', '5 follower', '2 leader']);
});

test('a one-member cluster is just its leader', () => {
  expect(restartOrder([member(7, 'voter', true)], 7)).toEqual([{ id: 7, api: '10.0.0.7:7002', raft: '10.0.0.7:7001', part: 'leader' }]);
});

test("the command's environment names the node; an IPv6 host comes without brackets", () => {
  expect(stepEnv({ id: 3, api: '[fd00::3]:7002', raft: '[fd00::3]:7001', part: 'follower' })).toEqual({
    NODE_ID: '3',
    NODE_API: '[fd00::3]:7002',
    NODE_HOST: 'fd00::3',
    NODE_RAFT: '[fd00::3]:7001',
    NODE_ROLE: 'follower',
  });
});
