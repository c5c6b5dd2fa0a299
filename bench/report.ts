/**
 * The run's figures as a machine-readable summary (bench/results/latest.json, one line of
 * bench/results/history.jsonl) and as tables on stdout, with each target met or missed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ChainProbe } from './chain_probe';
import type { FailoverResult } from './failover';
import type { ProfileResult } from './profile';
import type { RssSample } from './procstat';
import type { RestartResult } from './restart';
import type { SoakResult } from './soak';
import type { SqlResult } from './sql';
import { ratio, round } from './stats';
import type { LoadRun, ThroughputResult } from './throughput';

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGB: number;
  kernel: string;
  node: string;
  etcd: string | null;
  loadAverageStart: number[];
  loadAverageEnd: number[];
  /** Other work on the machine at the start: a load average above half the CPUs. */
  busyAtStart: boolean;
  /** fdatasync of a 4 kB write in the temporary directory, ms: rewriting allocated blocks, and appending. */
  fsyncProbe: { p50Ms: number; p99Ms: number; appendP50Ms: number; appendP99Ms: number };
  /** The c=1 round trip of a write with no consensus software (chain_probe.ts); null without a throughput phase. */
  chainProbe: ChainProbe | null;
}

export interface Resources {
  /** Per agent: CPU and RSS with the cluster idle, before any load. */
  idle: { label: string; cpuPercent: number; rssMB: number }[];
  /** Per agent during pgraft's c=64 run: CPU over the run, highest RSS sampled. */
  underLoad: { label: string; role: string; cpuPercent: number; maxRssMB: number }[];
  /** Per agent: is RSS flat over pgraft's c=64 run (see flatness()). */
  flat: { label: string; firstHalfPeakMB: number; lastMB: number; growthPercent: number; flat: boolean }[];
  samples: RssSample[];
}

export interface Target {
  name: string;
  goal: string;
  value: string;
  met: boolean | null;
}

export interface Results {
  date: string;
  commit: string;
  dirty: boolean;
  quick: boolean;
  machine: Machine;
  options: Record<string, unknown>;
  throughput: ThroughputResult | null;
  failover: FailoverResult | null;
  sql: SqlResult | null;
  resources: Resources | null;
  /** pgraft alone at c=64 for minutes, RSS sampled all along (see soak.ts). */
  soak: SoakResult | null;
  restart: RestartResult | null;
  profile: ProfileResult | null;
  targets: Target[];
  durationSec: number;
}

/**
 * Flat: over the soak, the peak of its last fifth is no more than 10% above the peak of its
 * first fifth (see soak.ts). Over pgraft's c=64 run (flatness()), RSS ends no more than 10%
 * above the peak of the run's first half (the working set fills in the first half; a leak
 * keeps growing in the second).
 */
export const FLAT_GROWTH_PERCENT = 10;

export function flatness(samples: RssSample[]): Resources['flat'] {
  const loaded = samples.filter((s) => s.phase === 'pgraft c=64');
  const labels = [...new Set(loaded.map((s) => s.label))].sort();
  return labels.map((label) => {
    const mine = loaded.filter((s) => s.label === label);
    const half = mine.slice(0, Math.max(1, Math.floor(mine.length / 2)));
    const peak = Math.max(...half.map((s) => s.rssMB));
    const last = mine[mine.length - 1].rssMB;
    const growth = ((last - peak) / peak) * 100;
    return { label, firstHalfPeakMB: peak, lastMB: last, growthPercent: round(growth, 1), flat: growth <= FLAT_GROWTH_PERCENT };
  });
}

function run(t: ThroughputResult | null, system: string, c: number): LoadRun | undefined {
  return t?.runs.find((r) => r.system === system && r.concurrency === c);
}

const fmt = (v: number | null | undefined, digits = 2) => (v === null || v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits));

export function evaluateTargets(r: Omit<Results, 'targets'>): Target[] {
  const targets: Target[] = [];
  const p64 = run(r.throughput, 'pgraft', 64);
  const e64 = run(r.throughput, 'etcd', 64);
  const q64 = ratio(p64?.opsPerSec, e64?.opsPerSec);
  targets.push({ name: 'c=64 throughput', goal: 'pgraft ops/s >= 2x etcd', value: `${fmt(q64)}x (${fmt(p64?.opsPerSec, 0)} vs ${fmt(e64?.opsPerSec, 0)} ops/s)`, met: q64 === null ? null : q64 >= 2 });
  const p1 = run(r.throughput, 'pgraft', 1);
  const e1 = run(r.throughput, 'etcd', 1);
  const q1 = ratio(p1?.latencyUs.p50, e1?.latencyUs.p50);
  targets.push({ name: 'c=1 latency', goal: 'pgraft p50 <= 0.5x etcd', value: `${fmt(q1)}x (${fmt((p1?.latencyUs.p50 ?? NaN) / 1000)} vs ${fmt((e1?.latencyUs.p50 ?? NaN) / 1000)} ms)`, met: q1 === null ? null : q1 <= 0.5 });
  for (const [sig, limit, goal] of [['SIGKILL', 0.5, 'pgraft median <= 0.5x etcd'], ['SIGSTOP', 1, 'pgraft median <= etcd']] as const) {
    const p = r.failover?.summary.find((s) => s.system === 'pgraft' && s.signal === sig);
    const e = r.failover?.summary.find((s) => s.system === 'etcd' && s.signal === sig);
    const q = ratio(p?.medianMs, e?.medianMs);
    const failed = (p?.failed ?? 0) > 0;
    targets.push({
      name: `failover ${sig}`,
      goal,
      value: `${fmt(q)}x (${fmt(p?.medianMs, 0)} vs ${fmt(e?.medianMs, 0)} ms)${failed ? `; ${p!.failed} pgraft trials without any acknowledged write` : ''}`,
      met: q === null ? null : q <= limit && !failed,
    });
  }
  targets.push(rssTarget(r));
  return targets;
}

/**
 * Agent memory: the highest RSS under load at most 100 MB, and flat. With a soak, flat is
 * judged over the soak (long enough for a leak to show) and the highest RSS is taken over the
 * c=64 run and the soak; without one, both come from the c=64 run alone.
 */
function rssTarget(r: Omit<Results, 'targets'>): Target {
  const res = r.resources && r.resources.underLoad.length > 0 ? r.resources : null;
  const c64Max = res ? Math.max(...res.underLoad.map((u) => u.maxRssMB)) : null;
  const growth = (xs: { label: string; growthPercent: number }[]) => xs.map((x) => `${x.label} ${fmt(x.growthPercent, 1)}%`).join(', ');
  if (r.soak) {
    const soakMax = Math.max(...r.soak.agents.map((a) => a.peakMB));
    const maxRss = Math.max(soakMax, c64Max ?? -Infinity);
    return {
      name: 'agent RSS',
      goal: `<= 100 MB under load, flat over the ${r.soak.minutes}-minute c=64 soak (last fifth <= ${FLAT_GROWTH_PERCENT}% above first fifth)`,
      value: `max ${fmt(maxRss, 0)} MB (${c64Max === null ? 'no c=64 run' : `c=64 run ${fmt(c64Max, 0)} MB`}, soak ${fmt(soakMax, 0)} MB); soak growth ${growth(r.soak.agents)}`,
      met: maxRss <= 100 && r.soak.agents.every((a) => a.flat),
    };
  }
  if (res && c64Max !== null) {
    return {
      name: 'agent RSS',
      goal: `<= 100 MB under load, flat over the c=64 run (<= ${FLAT_GROWTH_PERCENT}% growth; no soak ran)`,
      value: `max ${fmt(c64Max, 0)} MB at c=64; growth ${growth(res.flat)}`,
      met: c64Max <= 100 && res.flat.every((f) => f.flat),
    };
  }
  return { name: 'agent RSS', goal: '<= 100 MB under load, flat', value: '-', met: null };
}

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(head), line(w.map((n) => '-'.repeat(n))), ...rows.map(line)].join('\n');
}

export function render(r: Results): string {
  const out: string[] = [];
  const m = r.machine;
  out.push(
    `pgraft benchmark ${r.date}  commit ${r.commit.slice(0, 10)}${r.dirty ? ' (uncommitted changes)' : ''}${r.quick ? '  [--quick]' : ''}`,
    `machine: ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGB} GB, node ${m.node}, etcd ${m.etcd ?? '-'}; load average at start ${m.loadAverageStart.map((v) => v.toFixed(2)).join(' ')}, at end ${m.loadAverageEnd.map((v) => v.toFixed(2)).join(' ')}${m.busyAtStart ? '  ** the machine was busy: figures are noisy **' : ''}`,
    `disk: write + fdatasync of 4 kB: in place p50 ${fmt(m.fsyncProbe.p50Ms)} ms, p99 ${fmt(m.fsyncProbe.p99Ms)} ms; appending p50 ${fmt(m.fsyncProbe.appendP50Ms)} ms, p99 ${fmt(m.fsyncProbe.appendP99Ms)} ms`,
  );
  if (m.chainProbe) {
    out.push(
      `reference chain (HTTP to a leader, TCP to 2 followers, one O_DSYNC write on each, answer on 2 of 3; no consensus software): c=1 p50 ${fmt(m.chainProbe.p50Ms)} ms, p99 ${fmt(m.chainProbe.p99Ms)} ms`,
    );
  }
  if (r.throughput) {
    const cs = [...new Set(r.throughput.runs.map((x) => x.concurrency))];
    const rows = cs.map((c) => {
      const p = run(r.throughput, 'pgraft', c);
      const e = run(r.throughput, 'etcd', c);
      const ms = (x?: LoadRun, k: 'p50' | 'p99' = 'p50') => (x ? x.latencyUs[k] / 1000 : NaN);
      return [
        String(c),
        fmt(p?.opsPerSec, 0), fmt(e?.opsPerSec, 0), fmt(ratio(p?.opsPerSec, e?.opsPerSec)),
        fmt(ms(p)), fmt(ms(e)), fmt(ratio(ms(p), ms(e))),
        fmt(ms(p, 'p99')), fmt(ms(e, 'p99')), fmt(ratio(ms(p, 'p99'), ms(e, 'p99'))),
        `${fmt(p?.servers.find((s) => s.role === 'leader')?.cpuPercent, 0)}/${fmt(e?.servers.find((s) => s.role === 'leader')?.cpuPercent, 0)}`,
        `${p?.generator.cpuPercentEach.map((v) => v.toFixed(0)).join('+') ?? '-'}/${e?.generator.cpuPercentEach.map((v) => v.toFixed(0)).join('+') ?? '-'}`,
        `${p?.errors ?? '-'}/${e?.errors ?? '-'}`,
      ];
    });
    out.push('', `Throughput: ${r.options.valueBytes}-byte writes to the leader, closed loop, ${Number(r.options.durationSec)} s per run (pgraft/etcd ratios)`);
    out.push(table(['c', 'pgraft ops/s', 'etcd ops/s', 'ratio', 'pgraft p50 ms', 'etcd p50 ms', 'ratio', 'pgraft p99 ms', 'etcd p99 ms', 'ratio', 'leader CPU% p/e', 'gen CPU% p/e', 'errors p/e'], rows));
    const pm = r.throughput.runs.filter((x) => x.system === 'pgraft' && x.pgraftMetrics);
    if (pm.length > 0) {
      out.push('', 'pgraft leader internals per run (from its /metrics):');
      out.push(table(['c', 'log appends', 'entries/append', 'append+fsync ms', 'proposal->applied ms'], pm.map((x) => [String(x.concurrency), String(x.pgraftMetrics!.appends), fmt(x.pgraftMetrics!.meanBatchEntries, 1), fmt(x.pgraftMetrics!.meanFsyncMs), fmt(x.pgraftMetrics!.meanCommitMs)])));
    }
  }
  if (r.failover) {
    const rows: string[][] = [];
    for (const sig of ['SIGKILL', 'SIGSTOP'] as const) {
      const p = r.failover.summary.find((s) => s.system === 'pgraft' && s.signal === sig);
      const e = r.failover.summary.find((s) => s.system === 'etcd' && s.signal === sig);
      rows.push([sig, String(p?.trials ?? '-'), fmt(p?.medianMs, 0), fmt(e?.medianMs, 0), fmt(ratio(p?.medianMs, e?.medianMs)), fmt(p?.maxMs, 0), fmt(e?.maxMs, 0), fmt(ratio(p?.maxMs, e?.maxMs)), `${p?.failed ?? '-'}/${e?.failed ?? '-'}`]);
    }
    out.push('', 'Failover: signal to the leader -> first write acknowledged by another member (election timeout 1000 ms, heartbeat 100 ms)');
    out.push(table(['signal', 'trials', 'pgraft median ms', 'etcd median ms', 'ratio', 'pgraft max ms', 'etcd max ms', 'ratio', 'no ack p/e'], rows));
  }
  if (r.sql) {
    out.push('', `SQL surface (${r.sql.postgresVersion}; one client, one statement after another)`);
    out.push(table(['statement', 'via', 'calls', 'p50 ms', 'p99 ms', 'calls/s'], r.sql.figures.map((f) => [f.statement, f.via, String(f.iterations), fmt(f.latencyMs.p50), fmt(f.latencyMs.p99), fmt(f.opsPerSec, 0)])));
  }
  if (r.resources) {
    const res = r.resources;
    out.push('', 'Agent resources (from /proc): idle, and under pgraft c=64 load');
    out.push(
      table(
        ['agent', 'idle CPU%', 'idle RSS MB', 'c=64 role', 'c=64 CPU%', 'c=64 max RSS MB', 'RSS first-half peak', 'RSS last', 'growth %', 'flat'],
        res.idle.map((i) => {
          const u = res.underLoad.find((x) => x.label === i.label);
          const f = res.flat.find((x) => x.label === i.label);
          return [i.label, fmt(i.cpuPercent, 1), fmt(i.rssMB, 0), u?.role ?? '-', fmt(u?.cpuPercent, 0), fmt(u?.maxRssMB, 0), fmt(f?.firstHalfPeakMB, 0), fmt(f?.lastMB, 0), fmt(f?.growthPercent, 1), f ? (f.flat ? 'yes' : 'no') : '-'];
        }),
      ),
    );
  }
  if (r.soak) {
    const sk = r.soak;
    out.push('', `Memory over a ${sk.minutes}-minute pgraft c=${sk.concurrency} soak (${fmt(sk.opsPerSec, 0)} ops/s, ${sk.errors} errors; RSS every ${sk.sampleIntervalSec} s; flat: last fifth's peak <= ${FLAT_GROWTH_PERCENT}% above first fifth's)`);
    out.push(
      table(
        ['agent', 'role', 'first fifth peak MB', 'peak MB', 'of it own (RssAnon) MB', 'last MB', 'last fifth peak MB', 'growth %', 'flat'],
        sk.agents.map((a) => [a.label, a.role, fmt(a.firstFifthPeakMB, 0), fmt(a.peakMB, 0), fmt(a.peakAnonMB, 0), fmt(a.lastMB, 0), fmt(a.lastFifthPeakMB, 0), fmt(a.growthPercent, 1), a.flat ? 'yes' : 'no']),
      ),
    );
  }
  if (r.restart) {
    const rs = r.restart;
    out.push('', `Restart of an agent whose log holds ${rs.entries} entries (${(rs.logBytes / 2 ** 20).toFixed(0)} MB; snapshot ${fmt(rs.snapshotBytes / 2 ** 20, 1)} MB): spawn -> ...`);
    out.push(table(['snapshot', 'API up ms', 'log applied ms', 'healthy ms', 'RSS MB'], rs.runs.map((x) => [x.snapshot ? 'yes' : 'no', fmt(x.apiMs, 0), fmt(x.appliedMs, 0), fmt(x.healthyMs, 0), fmt(x.rssMB, 0)])));
  }
  if (r.profile) {
    const p = r.profile;
    out.push('', `CPU profile of the leader at c=${p.concurrency} (${fmt(p.opsPerSec, 0)} ops/s under the profiler; ${p.window}: busy ${p.busyMs} of ${p.totalMs} ms): ${p.file}`);
    if (p.flameGraph) out.push(`flame graph of the ${p.window}: ${p.flameGraph} (open it in a browser; folded stacks for other tools: ${p.folded})`);
    out.push(table(['self time, by function', '%'], p.topFunctions.slice(0, 12).map((f) => [f.name, fmt(f.percent, 1)])));
    out.push(table(['self time, by file', '%'], p.topFiles.slice(0, 10).map((f) => [f.name, fmt(f.percent, 1)])));
  }
  out.push('', 'Targets:');
  for (const t of r.targets) out.push(`  ${t.met === null ? 'NOT MEASURED' : t.met ? 'met   ' : 'MISSED'}  ${t.name}: ${t.goal}; measured ${t.value}`);
  out.push('', `(${r.durationSec.toFixed(0)} s)`);
  return out.join('\n');
}

export function save(r: Results, dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, 'latest.json.tmp');
  fs.writeFileSync(tmp, JSON.stringify(r, null, 1) + '\n');
  fs.renameSync(tmp, path.join(dir, 'latest.json'));
  const thr = (system: string, c: number) => {
    const x = run(r.throughput, system, c);
    return x ? { opsPerSec: round(x.opsPerSec, 0), p50Ms: round(x.latencyUs.p50 / 1000, 3), p99Ms: round(x.latencyUs.p99 / 1000, 3) } : null;
  };
  const line = {
    date: r.date,
    commit: r.commit,
    dirty: r.dirty,
    quick: r.quick,
    machine: { cpus: r.machine.cpus, loadAverageStart: r.machine.loadAverageStart, loadAverageEnd: r.machine.loadAverageEnd, busyAtStart: r.machine.busyAtStart, fsyncP50Ms: r.machine.fsyncProbe.p50Ms, appendFsyncP50Ms: r.machine.fsyncProbe.appendP50Ms, chainP50Ms: r.machine.chainProbe?.p50Ms ?? null },
    throughput: Object.fromEntries(
      [...new Set(r.throughput?.runs.map((x) => x.concurrency) ?? [])].map((c) => [`c${c}`, { pgraft: thr('pgraft', c), etcd: thr('etcd', c) }]),
    ),
    failover: r.failover?.summary.map((s) => ({ system: s.system, signal: s.signal, trials: s.trials, medianMs: round(s.medianMs ?? NaN, 0), maxMs: round(s.maxMs ?? NaN, 0), failed: s.failed })) ?? null,
    sql: r.sql?.figures.map((f) => ({ statement: f.statement, via: f.via, p50Ms: round(f.latencyMs.p50, 3), p99Ms: round(f.latencyMs.p99, 3) })) ?? null,
    agentMaxRssMB: r.resources ? Math.max(...r.resources.underLoad.map((u) => u.maxRssMB)) : null,
    soak: r.soak
      ? {
          minutes: r.soak.minutes,
          opsPerSec: round(r.soak.opsPerSec, 0),
          maxRssMB: Math.max(...r.soak.agents.map((a) => a.peakMB)),
          growthPercent: Math.max(...r.soak.agents.map((a) => a.growthPercent)),
        }
      : null,
    restart: r.restart?.runs.map((x) => ({ snapshot: x.snapshot, appliedMs: round(x.appliedMs, 0), healthyMs: round(x.healthyMs, 0) })) ?? null,
    targets: Object.fromEntries(r.targets.map((t) => [t.name, t.met])),
  };
  fs.appendFileSync(path.join(dir, 'history.jsonl'), JSON.stringify(line) + '\n');
}
