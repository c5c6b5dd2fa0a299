/**
 * A pgraft cluster of real agent processes (`pgraft agent` through dist/agent/cli/main.js) on
 * 127.0.0.1, built on the integration tests' machinery (test/support/agents.ts: free ports,
 * one configuration file and data directory per node, log capture, processes killed at exit).
 * The processes are spawned here, from this checkout's dist/, with node options when asked.
 */
import { spawn } from 'node:child_process';
import { AgentProcess, StatusBody, TestCluster, TestNode, waitFor } from '../test/support/agents';
import { trackDir, trackPid } from './cleanup';
import { assertBuilt, CLI } from './paths';
import { Labelled } from './procstat';
import { sleep } from './stats';

/** Settings shared by every benchmark cluster: the timing both systems get (etcd: the same flags). */
export const ELECTION_TIMEOUT_MS = 1000;
export const HEARTBEAT_MS = 100;

export function timingSettings(): Record<string, string> {
  return {
    'pgraft.election_timeout': `${ELECTION_TIMEOUT_MS}ms`,
    'pgraft.heartbeat_interval': `${HEARTBEAT_MS}ms`,
  };
}

export class PgraftCluster {
  private constructor(readonly cluster: TestCluster) {}

  /** Creates `size` founding nodes (not started). */
  static async create(size: number, settings: Record<string, string> = {}): Promise<PgraftCluster> {
    assertBuilt();
    const cluster = await TestCluster.create({ size, settings: { ...timingSettings(), ...settings } });
    trackDir(cluster.dir);
    return new PgraftCluster(cluster);
  }

  get nodes(): TestNode[] {
    return [...this.cluster.nodes.values()];
  }

  /**
   * Starts a node's agent (`node [nodeArgs] dist/agent/cli/main.js agent --config FILE`);
   * nodeArgs go to node itself (e.g. --cpu-prof).
   */
  start(node: TestNode, nodeArgs: string[] = []): AgentProcess {
    if (node.proc?.running) throw new Error(`node ${node.id} is already running`);
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (k !== 'PGDATA' && !k.startsWith('PGRAFT_')) env[k] = v;
    const child = spawn(process.execPath, [...nodeArgs, CLI, 'agent', '--config', node.configFile], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const proc = new AgentProcess(node, child);
    node.proc = proc;
    node.runs.push(proc);
    node.paused = false;
    trackPid(proc.pid);
    return proc;
  }

  async startAll(nodeArgs: string[] = []): Promise<TestNode> {
    for (const n of this.nodes) this.start(n, nodeArgs);
    return this.settle();
  }

  leader(): Promise<TestNode> {
    return this.cluster.waitLeader(undefined, 30_000);
  }

  /**
   * Waits until every node runs, all agree on one leader, and each has applied what the leader
   * had committed; then a short pause so that the next measurement starts from a quiet cluster.
   */
  async settle(quietMs = 500): Promise<TestNode> {
    const leader = await this.cluster.waitLeader(this.nodes, 30_000);
    const st = await leader.status();
    await this.cluster.waitApplied(st.commitIndex, this.nodes, 30_000);
    await sleep(quietMs);
    return leader;
  }

  statuses(): Promise<(StatusBody | null)[]> {
    return Promise.all(this.nodes.map((n) => n.status().catch(() => null)));
  }

  /** SIGTERM to every running agent, and waits for them to exit (profiles are written on exit). */
  async stopAll(): Promise<void> {
    await Promise.all(
      this.nodes
        .filter((n) => n.proc?.running)
        .map(async (n) => {
          if (n.paused) n.resume();
          await n.stop().catch(async () => {
            n.p.signal('SIGKILL');
            await n.p.waitExit(5000).catch(() => undefined);
          });
        }),
    );
  }

  procs(): Labelled[] {
    return this.nodes.filter((n) => n.proc?.running).map((n) => ({ label: `pgraft-${n.id}`, pid: n.proc!.pid }));
  }
}

export { waitFor };
