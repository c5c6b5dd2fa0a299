import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { Agent, AgentOptions } from '../../agent/node';
import { freePorts } from './ports';

export { freePorts };

export async function waitFor<T>(what: string, f: () => T | undefined | null | false, timeoutMs = 10000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Agents in the test process over loopback TCP and real disk storage in a temp directory;
 * close() stops them all and removes the directory (call it from afterEach).
 */
export class InProcessCluster {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgraft-agents-'));
  readonly agents: Agent[] = [];

  options(nodeId: number, port: number, bootstrap?: AgentOptions['bootstrap']): AgentOptions {
    return {
      nodeId,
      clusterId: 'test',
      raftHost: '127.0.0.1',
      raftPort: port,
      apiAddress: '',
      dataDir: path.join(this.dir, `n${nodeId}`),
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
    };
  }

  /** Starts n bootstrapped members (ids 1..n), with `overrides` on every one's options. */
  async start(n: number, overrides: Partial<AgentOptions> = {}): Promise<Agent[]> {
    const ports = await freePorts(n);
    const members = ports.map((p, i) => ({ id: i + 1, raftAddress: `127.0.0.1:${p}` }));
    const started = await Promise.all(members.map((m, i) => Agent.start({ ...this.options(m.id, ports[i], members), ...overrides })));
    this.agents.push(...started);
    return started;
  }

  /** Starts one more agent with an empty data directory (to be added or initialized). */
  async startEmpty(nodeId: number): Promise<{ agent: Agent; port: number }> {
    const [port] = await freePorts(1);
    const agent = await Agent.start(this.options(nodeId, port));
    this.agents.push(agent);
    return { agent, port };
  }

  /**
   * The leader, once it has committed an entry of its term: before that it refuses
   * membership changes (the core's rule), and a test that asks at once would race it.
   */
  leader(): Promise<Agent> {
    return waitFor('a leader that has committed in its term', () =>
      this.agents.find((a) => {
        if (a.state !== 'RUNNING' || !a.isLeader()) return false;
        const { term, commit } = a.status().hardState;
        return a.entry(commit)?.term === term;
      }),
    );
  }

  /** Starts agent `nodeId` again on its data directory (empty if wiped) and Raft port. */
  async restart(nodeId: number, port: number): Promise<Agent> {
    const agent = await Agent.start(this.options(nodeId, port));
    this.agents.push(agent);
    return agent;
  }

  async close(): Promise<void> {
    await Promise.all(this.agents.map((a) => a.stop()));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
