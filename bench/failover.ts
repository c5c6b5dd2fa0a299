/**
 * Failover: stop the leader of a three-node cluster (SIGKILL: a crash; SIGSTOP: a silent
 * failure, connections stay open) and measure the time from the signal to the first write
 * acknowledged by another member.
 *
 * A prober writes to each surviving member continuously: one write after another, a new one
 * at once when one fails, and (so that a write stuck behind the stopped leader cannot hide
 * the moment service returns) an extra one whenever the newest outstanding write has waited
 * 20 ms, each on its own connection, up to 256 outstanding per member. A write gives up after
 * 5 s (it then counts as failed). Only writes sent after the signal count. The same
 * prober drives pgraft and etcd.
 */
import * as http from 'node:http';
import { TestNode } from '../test/support/agents';
import { EtcdCluster, EtcdMember } from './etcd';
import { keepAliveAgent, prepareWrite, request, System } from './kv_request';
import { PgraftCluster } from './pgraft';
import { median, sleep } from './stats';

export type StopSignal = 'SIGKILL' | 'SIGSTOP';

interface Target {
  label: string;
  port: number;
}

/** One system as the failover trials see it. */
interface Subject {
  system: System;
  /** The leader, once every running member agrees on it. */
  leader(): Promise<{ label: string; pid: number }>;
  /** Everyone but the leader. */
  survivors(leaderLabel: string): Target[];
  /** Delivers the signal to the leader. */
  stop(leaderLabel: string, sig: StopSignal): void;
  /** Restarts (after SIGKILL) or resumes (after SIGSTOP) the stopped leader. */
  recover(leaderLabel: string, sig: StopSignal): Promise<void>;
  /** Waits until all members agree and are caught up. */
  settle(): Promise<void>;
}

export function pgraftSubject(c: PgraftCluster): Subject {
  const byLabel = (l: string): TestNode => c.nodes.find((n) => `pgraft-${n.id}` === l)!;
  return {
    system: 'pgraft',
    leader: async () => {
      const n = await c.leader();
      return { label: `pgraft-${n.id}`, pid: n.p.pid };
    },
    survivors: (l) => c.nodes.filter((n) => `pgraft-${n.id}` !== l).map((n) => ({ label: `pgraft-${n.id}`, port: n.apiPort })),
    stop: (l, sig) => {
      const n = byLabel(l);
      if (sig === 'SIGSTOP') n.pause();
      else n.p.signal('SIGKILL');
    },
    recover: async (l, sig) => {
      const n = byLabel(l);
      if (sig === 'SIGSTOP') {
        n.resume();
        return;
      }
      await n.p.waitExit();
      c.start(n);
    },
    settle: async () => {
      await c.settle();
    },
  };
}

export function etcdSubject(c: EtcdCluster): Subject {
  const byLabel = (l: string): EtcdMember => c.members.find((m) => `etcd-${m.name}` === l)!;
  return {
    system: 'etcd',
    leader: async () => {
      const m = await c.leader();
      return { label: `etcd-${m.name}`, pid: m.pid };
    },
    survivors: (l) => c.members.filter((m) => `etcd-${m.name}` !== l).map((m) => ({ label: `etcd-${m.name}`, port: m.clientPort })),
    stop: (l, sig) => byLabel(l).signal(sig),
    recover: async (l, sig) => {
      const m = byLabel(l);
      if (sig === 'SIGSTOP') {
        m.signal('SIGCONT');
        return;
      }
      await m.exited;
      m.start();
    },
    settle: async () => {
      await c.settle();
    },
  };
}

const ATTEMPT_TIMEOUT_MS = 5000;
const EXTRA_AFTER_MS = 20;
const MAX_OUTSTANDING = 256;

/** Writes to the survivors until stopped; reports the first write sent after arm() that is acknowledged. */
class Prober {
  private readonly agents: http.Agent[];
  private readonly outstanding: number[];
  private readonly newest: number[];
  private readonly timer: NodeJS.Timeout;
  private seq = 0;
  private stopped = false;
  private armedAt = Infinity;
  private onAck: ((r: { at: number; by: string }) => void) | null = null;
  failures = 0;
  writes = 0;

  constructor(
    private readonly system: System,
    private readonly targets: Target[],
  ) {
    this.agents = targets.map(() => keepAliveAgent(MAX_OUTSTANDING));
    this.outstanding = targets.map(() => 0);
    this.newest = targets.map(() => 0);
    this.timer = setInterval(() => this.tick(), 5);
    this.tick();
  }

  /** From now on, the first acknowledged write that was sent after this call resolves. */
  arm(at: number): Promise<{ at: number; by: string }> {
    this.armedAt = at;
    return new Promise((resolve) => (this.onAck = resolve));
  }

  private tick(): void {
    const now = performance.now();
    this.targets.forEach((_, i) => {
      if (this.outstanding[i] === 0 || (now - this.newest[i] >= EXTRA_AFTER_MS && this.outstanding[i] < MAX_OUTSTANDING)) this.attempt(i);
    });
  }

  private attempt(i: number): void {
    if (this.stopped) return;
    const t = this.targets[i];
    const sent = performance.now();
    this.outstanding[i]++;
    this.newest[i] = sent;
    this.writes++;
    const w = prepareWrite(this.system, `failover-${process.pid}-${this.seq++}`, 'x');
    request(this.agents[i], t.port, w, ATTEMPT_TIMEOUT_MS, true)
      .then(
        (a) => a.status === 200 && (this.system === 'pgraft' || a.body.includes('"header"')),
        () => false,
      )
      .then((ok) => {
        const at = performance.now();
        this.outstanding[i]--;
        if (ok && sent >= this.armedAt && this.onAck) {
          this.onAck({ at, by: t.label });
          this.onAck = null;
        }
        if (!ok) this.failures++;
        // Retry at once: the next write leaves as soon as this one is answered.
        if (!this.stopped && this.outstanding[i] === 0) this.attempt(i);
      });
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    for (const a of this.agents) a.destroy();
  }
}

export interface Trial {
  system: System;
  signal: StopSignal;
  trial: number;
  stopped: string;
  /** Signal to first acknowledged write, ms; null when none came within the trial's limit. */
  ms: number | null;
  ackedBy: string | null;
  failedWrites: number;
}

async function runTrial(s: Subject, sig: StopSignal, trial: number, limitMs: number): Promise<Trial> {
  const leader = await s.leader();
  const prober = new Prober(s.system, s.survivors(leader.label));
  let result: { at: number; by: string } | null = null;
  let t0 = 0;
  try {
    await sleep(300); // warm connections, steady writes
    const failuresBefore = prober.failures;
    t0 = performance.now();
    const ack = prober.arm(t0);
    s.stop(leader.label, sig);
    result = await Promise.race([ack, sleep(limitMs).then(() => null)]);
    return {
      system: s.system,
      signal: sig,
      trial,
      stopped: leader.label,
      ms: result ? result.at - t0 : null,
      ackedBy: result?.by ?? null,
      failedWrites: prober.failures - failuresBefore,
    };
  } finally {
    prober.stop();
    await s.recover(leader.label, sig);
    await s.settle();
  }
}

export interface FailoverSummary {
  system: System;
  signal: StopSignal;
  trials: number;
  failed: number;
  medianMs: number | null;
  maxMs: number | null;
  minMs: number | null;
}

export interface FailoverResult {
  trials: Trial[];
  summary: FailoverSummary[];
}

/** `trials` of each signal on each system, interleaved so that both see the same machine. */
export async function runFailover(subjects: Subject[], trials: number, log: (s: string) => void, limitMs = 20_000): Promise<FailoverResult> {
  const all: Trial[] = [];
  for (let t = 1; t <= trials; t++) {
    for (const sig of ['SIGKILL', 'SIGSTOP'] as const) {
      for (const s of subjects) {
        const r = await runTrial(s, sig, t, limitMs);
        all.push(r);
        log(`  failover ${t}/${trials} ${s.system} ${sig} ${r.stopped}: ${r.ms === null ? 'no write acknowledged' : `${r.ms.toFixed(0)} ms`} (${r.ackedBy ?? '-'}, ${r.failedWrites} failed writes)`);
      }
    }
  }
  const summary: FailoverSummary[] = [];
  for (const s of subjects) {
    for (const sig of ['SIGKILL', 'SIGSTOP'] as const) {
      const rs = all.filter((r) => r.system === s.system && r.signal === sig);
      const ok = rs.map((r) => r.ms).filter((v): v is number => v !== null);
      summary.push({
        system: s.system,
        signal: sig,
        trials: rs.length,
        failed: rs.length - ok.length,
        medianMs: ok.length ? median(ok) : null,
        maxMs: ok.length ? Math.max(...ok) : null,
        minMs: ok.length ? Math.min(...ok) : null,
      });
    }
  }
  return { trials: all, summary };
}
