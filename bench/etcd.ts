/**
 * A three-member etcd cluster on 127.0.0.1 for comparison: Debian's etcd-server package
 * (installed with apt-get when `etcd` is missing), default durability (etcd fsyncs its WAL
 * before acknowledging), the same election timeout and heartbeat interval as pgraft.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freePorts, waitFor } from '../test/support/agents';
import { trackDir, trackPid, untrackPid } from './cleanup';
import { jsonCall } from './kv_request';
import { ELECTION_TIMEOUT_MS, HEARTBEAT_MS } from './pgraft';
import { Labelled } from './procstat';
import { sleep } from './stats';

function onPath(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Makes sure `etcd` is installed; returns its version line. */
export function ensureEtcd(log: (s: string) => void): string {
  if (!onPath('etcd')) {
    const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
    const run = (args: string[]) => {
      const [cmd, ...rest] = [...sudo, ...args];
      execFileSync(cmd, rest, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 600_000 });
    };
    log('etcd is not installed: apt-get update && apt-get install etcd-server');
    run(['apt-get', 'update', '-qq']);
    run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', 'etcd-server']);
  }
  const out = execFileSync('etcd', ['--version']).toString();
  return /etcd Version: (\S+)/.exec(out)?.[1] ?? out.split('\n')[0];
}

export class EtcdMember {
  proc: ChildProcess | null = null;
  paused = false;
  exited: Promise<void> = Promise.resolve();
  /** The id etcd gives this member (decimal, as the JSON gateway prints it). */
  memberId = '';

  constructor(
    readonly name: string,
    readonly clientPort: number,
    readonly peerPort: number,
    readonly dataDir: string,
    private readonly initialCluster: string,
    private readonly token: string,
    private readonly logFile: string,
  ) {}

  get pid(): number {
    return this.proc!.pid!;
  }

  get running(): boolean {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  start(): void {
    const out = fs.openSync(this.logFile, 'a');
    const client = `http://127.0.0.1:${this.clientPort}`;
    const peer = `http://127.0.0.1:${this.peerPort}`;
    const child = spawn(
      'etcd',
      [
        '--name', this.name,
        '--data-dir', this.dataDir,
        '--listen-client-urls', client,
        '--advertise-client-urls', client,
        '--listen-peer-urls', peer,
        '--initial-advertise-peer-urls', peer,
        '--initial-cluster', this.initialCluster,
        '--initial-cluster-token', this.token,
        '--initial-cluster-state', 'new', // ignored once the data directory holds the member
        '--heartbeat-interval', String(HEARTBEAT_MS),
        '--election-timeout', String(ELECTION_TIMEOUT_MS),
        '--logger', 'zap',
        '--log-level', 'warn',
      ],
      { stdio: ['ignore', out, out] },
    );
    fs.closeSync(out);
    trackPid(child.pid);
    this.proc = child;
    this.paused = false;
    this.exited = new Promise((r) => child.once('exit', () => {
      untrackPid(child.pid);
      r();
    }));
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.proc!.kill(sig);
    if (sig === 'SIGSTOP') this.paused = true;
    if (sig === 'SIGCONT') this.paused = false;
  }

  async status(): Promise<{ memberId: string; leader: string; raftIndex: number; appliedIndex: number; term: number } | null> {
    const a = await jsonCall(this.clientPort, 'POST', '/v3/maintenance/status', {}, 1000);
    if (!a || a.status !== 200 || !a.body?.header) return null;
    return {
      memberId: String(a.body.header.member_id),
      leader: String(a.body.leader ?? '0'),
      raftIndex: Number(a.body.raftIndex ?? 0),
      appliedIndex: Number(a.body.raftAppliedIndex ?? 0),
      term: Number(a.body.raftTerm ?? 0),
    };
  }
}

export class EtcdCluster {
  private constructor(
    readonly dir: string,
    readonly members: EtcdMember[],
  ) {}

  static async create(tmpRoot: string, size: number): Promise<EtcdCluster> {
    const dir = fs.mkdtempSync(path.join(tmpRoot, 'pgraft-bench-etcd-'));
    trackDir(dir);
    const ports = await freePorts(size * 2);
    const names = Array.from({ length: size }, (_, i) => `e${i + 1}`);
    const initial = names.map((n, i) => `${n}=http://127.0.0.1:${ports[i * 2 + 1]}`).join(',');
    const token = `bench-${process.pid}-${Date.now()}`;
    const members = names.map(
      (n, i) => new EtcdMember(n, ports[i * 2], ports[i * 2 + 1], path.join(dir, n), initial, token, path.join(dir, `${n}.log`)),
    );
    return new EtcdCluster(dir, members);
  }

  async startAll(): Promise<EtcdMember> {
    for (const m of this.members) m.start();
    return this.settle();
  }

  /** The member that leads, as every running member sees it. */
  async leader(among = this.members.filter((m) => m.running && !m.paused), timeoutMs = 30_000): Promise<EtcdMember> {
    return waitFor(
      'an etcd leader agreed on by the running members',
      async () => {
        const st = await Promise.all(among.map((m) => m.status()));
        if (st.some((s) => s === null)) return null;
        st.forEach((s, i) => (among[i].memberId = s!.memberId));
        const lead = st[0]!.leader;
        if (lead === '0' || !st.every((s) => s!.leader === lead)) return null;
        return among.find((m) => m.memberId === lead) ?? null;
      },
      timeoutMs,
      25,
    );
  }

  /** Every member runs, agrees on the leader, and has applied what the leader had applied; then a pause. */
  async settle(quietMs = 500): Promise<EtcdMember> {
    const leader = await this.leader(this.members);
    const target = (await leader.status())?.appliedIndex ?? 0;
    await waitFor(
      'etcd members to catch up',
      async () => {
        const st = await Promise.all(this.members.map((m) => m.status()));
        return st.every((s) => s !== null && s.appliedIndex >= target);
      },
      30_000,
    );
    await sleep(quietMs);
    return leader;
  }

  async stopAll(): Promise<void> {
    for (const m of this.members) {
      if (!m.running) continue;
      m.signal('SIGCONT');
      m.signal('SIGTERM');
    }
    await Promise.race([Promise.all(this.members.map((m) => m.exited)), sleep(10_000)]);
    for (const m of this.members) m.signal('SIGKILL');
    await Promise.all(this.members.map((m) => m.exited));
  }

  procs(): Labelled[] {
    return this.members.filter((m) => m.running).map((m) => ({ label: `etcd-${m.name}`, pid: m.pid }));
  }
}
