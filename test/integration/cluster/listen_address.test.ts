/**
 * pgraft.listen_address apart from pgraft.address, as in a container or behind NAT: the
 * agent listens where listen_address says and announces address, which the other nodes dial.
 * Here the nodes listen on 127.0.0.1 and announce "localhost", a name for it.
 */
import { TestCluster, cleanupAgents, expectAllReadable, putMany, waitFor } from '../../support/agents';

afterEach(cleanupAgents);

test('the agent listens on listen_address and announces address; the others reach it there', async () => {
  const c = await TestCluster.create({ size: 3, spare: 1 });
  for (const n of c.nodes.values()) {
    Object.assign(n.settings, { 'pgraft.address': "'localhost'", 'pgraft.listen_address': "'127.0.0.1'" });
    n.writeConfig();
  }
  c.startFounders();
  const leader = await c.waitLeader();
  for (const n of c.running()) {
    await n.p.waitForLog('the Raft listener', (l) => l.msg === `listening for peers on 127.0.0.1:${n.raftPort}`);
    await n.p.waitForLog('the API', (l) => l.msg === `HTTP API at http://localhost:${n.apiPort}`);
  }
  // Each node records its API address through Raft once it knows a leader.
  const announced = await waitFor('every node to record its API address', async () => {
    const members = (await leader.status()).members;
    return members.every((m) => m.apiAddress !== '') && members.map((m) => [m.id, m.apiAddress]);
  });
  expect(announced).toEqual([1, 2, 3].map((id) => [id, `localhost:${c.node(id).apiPort}`]));

  // A joining node is added under the address it announces, and the leader replicates to it there.
  const n4 = c.node(4);
  n4.start(['--join', leader.apiAddress]);
  await n4.p.waitForLog('that it joined', (l) => l.msg === 'joined the cluster as a voter', 20_000);
  const member = (await leader.status()).members.find((m) => m.id === 4)!;
  expect([member.raftAddress, member.apiAddress]).toEqual([`localhost:${n4.raftPort}`, `localhost:${n4.apiPort}`]);
  const keys = await putMany(n4, 'nat-', 10);
  await expectAllReadable(leader, keys);
});
