/**
 * Throughput and latency of 256-byte writes at each concurrency, pgraft and etcd alternately
 * (pgraft c=1, etcd c=1, pgraft c=16, ...) so that both see the same machine, each against its
 * leader. Measures, per run, the CPU of every server process and of the generator, and for
 * pgraft samples RSS all along (resources, see run.ts).
 */
import { EtcdCluster } from './etcd';
import { textCall } from './kv_request';
import { LoadResult, runLoad } from './loadgen';
import { PgraftCluster } from './pgraft';
import { CpuUse, CpuWindow, Labelled, RssSampler } from './procstat';
import { sleep } from './stats';

export interface ThroughputOptions {
  concurrency: number[];
  warmupMs: number;
  /**
   * Unmeasured load on each system, after the idle measurement and before its first run. An
   * agent runs on a JIT: in its first seconds the write path is still being compiled (at c=1,
   * p50 1.3 ms in the first second after start, 0.9 ms in the third, 0.67 ms from the fourth).
   */
  prewarmMs: number;
  prewarmConcurrency: number;
  durationMs: number;
  valueBytes: number;
  keys: number;
  generatorProcesses: number;
  idleMs: number;
}

export interface LoadRun extends LoadResult {
  leader: string;
  servers: (CpuUse & { role: 'leader' | 'follower' })[];
  /** pgraft's own counters over the run (from the leader's /metrics), when available. */
  pgraftMetrics?: MetricsDelta;
}

export interface MetricsDelta {
  fsyncs: number;
  meanFsyncMs: number;
  appends: number;
  meanBatchEntries: number;
  meanCommitMs: number;
}

export interface IdleUse {
  system: 'pgraft' | 'etcd';
  servers: CpuUse[];
}

export interface ThroughputResult {
  idleBefore: IdleUse[];
  idleAfter: IdleUse[];
  runs: LoadRun[];
}

async function metricsText(port: number): Promise<string | null> {
  const a = await textCall(port, 'GET', '/metrics', undefined, 5000);
  return a && a.status === 200 ? a.body : null;
}

function metricValue(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

function metricsDelta(before: string, after: string): MetricsDelta {
  const d = (name: string) => metricValue(after, name) - metricValue(before, name);
  const fsyncs = d('pgraft_fsync_duration_seconds_count');
  const appends = d('pgraft_batch_entries_count');
  const commits = d('pgraft_proposal_commit_seconds_count');
  return {
    fsyncs,
    meanFsyncMs: (d('pgraft_fsync_duration_seconds_sum') / fsyncs) * 1000,
    appends,
    meanBatchEntries: d('pgraft_batch_entries_sum') / appends,
    meanCommitMs: (d('pgraft_proposal_commit_seconds_sum') / commits) * 1000,
  };
}

async function idleUse(system: 'pgraft' | 'etcd', procs: Labelled[], ms: number): Promise<IdleUse> {
  const w = new CpuWindow(procs);
  await sleep(ms);
  return { system, servers: w.stop() };
}

export async function runThroughput(
  pg: PgraftCluster,
  etcd: EtcdCluster,
  o: ThroughputOptions,
  rss: RssSampler,
  log: (s: string) => void,
): Promise<ThroughputResult> {
  const idleBefore = [await idleUse('pgraft', pg.procs(), o.idleMs), await idleUse('etcd', etcd.procs(), o.idleMs)];
  if (o.prewarmMs > 0) {
    for (const system of ['pgraft', 'etcd'] as const) {
      const port = system === 'pgraft' ? (await pg.settle()).apiPort : (await etcd.settle()).clientPort;
      rss.phase = `${system} prewarm`;
      const r = await runLoad(
        { system, port, concurrency: o.prewarmConcurrency, warmupMs: 0, durationMs: o.prewarmMs, valueBytes: o.valueBytes, keys: o.keys, keyPrefix: 'prewarm-' },
        o.generatorProcesses,
      );
      log(`  ${system.padEnd(6)} prewarm: ${(o.prewarmMs / 1000).toFixed(1)} s at c=${o.prewarmConcurrency}, ${r.opsPerSec.toFixed(0)} ops/s (not measured)`);
    }
    rss.phase = 'idle';
  }
  const runs: LoadRun[] = [];
  for (const c of o.concurrency) {
    for (const system of ['pgraft', 'etcd'] as const) {
      let port: number;
      let leaderLabel: string;
      let metricsPort: number | null = null;
      let procs: Labelled[];
      if (system === 'pgraft') {
        const leader = await pg.settle();
        port = leader.apiPort;
        metricsPort = leader.metricsPort;
        leaderLabel = `pgraft-${leader.id}`;
        procs = pg.procs();
      } else {
        const leader = await etcd.settle();
        port = leader.clientPort;
        leaderLabel = `etcd-${leader.name}`;
        procs = etcd.procs();
      }
      const before = metricsPort ? await metricsText(metricsPort) : null;
      rss.phase = `${system} c=${c} warm-up`;
      const load = runLoad(
        { system, port, concurrency: c, warmupMs: o.warmupMs, durationMs: o.durationMs, valueBytes: o.valueBytes, keys: o.keys, keyPrefix: `c${c}-` },
        o.generatorProcesses,
      );
      await sleep(o.warmupMs);
      rss.phase = `${system} c=${c}`;
      const w = new CpuWindow(procs);
      await sleep(o.durationMs);
      const servers = w.stop().map((u) => ({ ...u, role: u.label === leaderLabel ? ('leader' as const) : ('follower' as const) }));
      rss.phase = 'idle';
      const result = await load;
      const after = metricsPort && before ? await metricsText(metricsPort) : null;
      const run: LoadRun = { ...result, leader: leaderLabel, servers };
      if (before && after) run.pgraftMetrics = metricsDelta(before, after);
      runs.push(run);
      const lat = result.latencyUs;
      log(
        `  ${system.padEnd(6)} c=${String(c).padEnd(3)} ${result.opsPerSec.toFixed(0).padStart(6)} ops/s  p50 ${(lat.p50 / 1000).toFixed(2)} ms  p99 ${(lat.p99 / 1000).toFixed(2)} ms  errors ${result.errors}  ` +
          `leader CPU ${servers.find((s) => s.role === 'leader')?.cpuPercent.toFixed(0)}%  generator CPU ${result.generator.cpuPercentEach.map((v) => v.toFixed(0)).join('+')}%`,
      );
    }
  }
  const idleAfter = [await idleUse('pgraft', pg.procs(), o.idleMs), await idleUse('etcd', etcd.procs(), o.idleMs)];
  return { idleBefore, idleAfter, runs };
}
