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

  async function startCluster(n: number): Promise<Agent[]> {
    const ports = await freePorts(n);
    const members = ports.map((p, i) => ({ id: i + 1, raftAddress: `127.0.0.1:${p}` }));
    const opts = (i: number): AgentOptions => ({
      nodeId: i + 1,
      clusterId: 'test',
      raftHost: '127.0.0.1',
      raftPort: ports[i],
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
      bootstrap: members,
      logger: pino({ level: 'silent' }),
    });
    agents = await Promise.all(members.map((_, i) => Agent.start(opts(i))));
    return agents;
  }

  test('elect a leader, commit writes, read them linearizably from a follower', async () => {
    const as = await startCluster(3);
    const leader = await waitFor('a leader', () => as.find((a) => a.isLeader()));
    for (let i = 0; i < 20; i++) await leader.propose({ op: Op.Put, key: `k${i}`, value: `v${i}` });
    const follower = as.find((a) => a !== leader)!;
    await expect(follower.propose({ op: Op.Put, key: 'x', value: 'y' })).rejects.toBeInstanceOf(NotLeaderError);
    expect(await follower.get('k19')).toBe('v19');
    expect(follower.fsm.keys()).toHaveLength(20);
  });
});
