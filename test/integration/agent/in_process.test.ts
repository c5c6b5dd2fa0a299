import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { Op } from '../../../agent/fsm/commands';
import { Agent, AgentOptions, NotLeaderError } from '../../../agent/node';

/** Free loopback ports, reserved by binding and releasing them. */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<net.Server>((resolve) => {
      const s = net.createServer();
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

async function waitFor<T>(what: string, f: () => T | undefined | null | false, timeoutMs = 10000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('agents in one process over loopback TCP', () => {
  let dir: string;
  let agents: Agent[] = [];

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgraft-agent-'));
  });
  afterEach(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    agents = [];
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const options = (i: number, port: number, bootstrap?: AgentOptions['bootstrap']): AgentOptions => ({
      nodeId: i + 1,
      clusterId: 'test',
      raftHost: '127.0.0.1',
      raftPort: port,
      apiAddress: '',
      dataDir: path.join(dir, `n${i + 1}`),
      electionTimeoutMs: 300,
      heartbeatIntervalMs: 30,
      preVote: true,
      checkQuorum: true,
      snapshotInterval: 1000,
      maxLogEntries: 100,
      compactionThreshold: 100,
      batchSize: 100,
      maxMessageBytes: 1 << 20,
      maxInflightMessages: 256,
      bootstrap,
      logger: pino({ level: 'silent' }),
    });

  async function startCluster(n: number): Promise<Agent[]> {
    const ports = await freePorts(n);
    const members = ports.map((p, i) => ({ id: i + 1, raftAddress: `127.0.0.1:${p}` }));
    agents = await Promise.all(members.map((_, i) => Agent.start(options(i, ports[i], members))));
    return agents;
  }

  test('elect a leader, commit writes, read them linearizably from a follower', async () => {
    const as = await startCluster(3);
    const leader = await waitFor('a leader', () => as.find((a) => a.isLeader()));
    for (let i = 0; i < 20; i++) await leader.propose({ op: Op.Put, key: `k${i}`, value: `v${i}` });
    const follower = as.find((a) => a !== leader)!;
    expect(await follower.get('k19')).toBe('v19');
    expect(follower.fsm.keys()).toHaveLength(20);
    // A follower's write is forwarded to the leader and resolves when applied here.
    const r = await follower.propose({ op: Op.Put, key: 'from-follower', value: 'y' });
    expect(r.value).toBe(true);
    expect(follower.fsm.get('from-follower')).toBe('y');
    expect(await leader.get('from-follower')).toBe('y');
    // Membership changes stay on the leader, and say where it is.
    await expect(follower.removeMember(leader.id)).rejects.toBeInstanceOf(NotLeaderError);
  });

  test('an empty node added on the leader learns where to answer from the handshake and catches up', async () => {
    const as = await startCluster(3);
    const leader = await waitFor('a leader', () => as.find((a) => a.isLeader()));
    for (let i = 0; i < 10; i++) await leader.propose({ op: Op.Put, key: `k${i}`, value: `v${i}` });
    const [port] = await freePorts(1);
    const fresh = await Agent.start(options(3, port)); // node 4, empty data directory, no bootstrap
    agents.push(fresh);
    expect(fresh.isEmpty()).toBe(true);
    await leader.addMember(4, `127.0.0.1:${port}`, undefined, false, 10000);
    expect(leader.status().config.voters).toEqual([1, 2, 3, 4]);
    await waitFor('node 4 to apply the writes', () => fresh.fsm.get('k9') === 'v9');
  });

  test('followers elect a successor soon after the leader\'s connections drop', async () => {
    const as = await startCluster(3);
    const leader = await waitFor('a leader', () => as.find((a) => a.isLeader()));
    const term = leader.status().hardState.term;
    await leader.stop();
    const rest = as.filter((a) => a !== leader);
    const next = await waitFor('a new leader', () => rest.find((a) => a.isLeader()));
    expect(next.status().hardState.term).toBeGreaterThan(term);
  });
});
