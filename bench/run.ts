/**
 * `npm run bench`: pgraft against etcd on this machine, in one run. See bench/README.md.
 *
 *   npm run bench                      full run (about 17 minutes, 10 of them the soak)
 *   npm run bench -- --quick           short runs, few trials: a smoke test of the benchmark
 *   npm run bench -- --help            every option
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cleanupAgents } from '../test/support/agents';
import { REPO } from './paths';
import { runChainProbe } from './chain_probe';
import { cleanupSync, installCleanupHandlers, trackDir } from './cleanup';
import { ensureEtcd, EtcdCluster } from './etcd';
import { etcdSubject, FailoverResult, pgraftSubject, runFailover } from './failover';
import { PgraftCluster } from './pgraft';
import { CpuUse, RssSampler } from './procstat';
import { ProfileResult, runProfile } from './profile';
import { evaluateTargets, flatness, Machine, render, Resources, Results, save } from './report';
import { RestartResult, runRestart } from './restart';
import { runSoak, SOAK_CONCURRENCY, SOAK_SAMPLE_SEC, SoakResult } from './soak';
import { runSql, SqlResult } from './sql';
import { quantile, round } from './stats';
import { runThroughput, ThroughputResult } from './throughput';

const PHASES = ['throughput', 'soak', 'failover', 'profile', 'sql', 'restart'] as const;
/** Clients of the unmeasured load that runs each system's code hot before it is measured. */
const PREWARM_CONCURRENCY = 16;
type Phase = (typeof PHASES)[number];

interface Options {
  quick: boolean;
  durationSec: number;
  warmupSec: number;
  prewarmSec: number;
  idleSec: number;
  concurrency: number[];
  valueBytes: number;
  keys: number;
  generators: number;
  soakMinutes: number;
  failoverTrials: number;
  sqlIterations: number;
  restartEntries: number;
  restartRuns: number;
  phases: Phase[];
  maxMinutes: number;
  results: string;
  record: boolean;
  profileConcurrency: number;
}

const HELP = `npm run bench -- [options]

  --quick                 short runs: 2 s per load run, 1-minute soak, 3 failover trials, 100,000-entry restart, no profile
  --duration SEC          measured seconds per load run (default 10; quick 2)
  --warmup SEC            unmeasured seconds before each load run (default 1; quick 0.5)
  --prewarm SEC           unmeasured seconds of c=${PREWARM_CONCURRENCY} load on each system before its first run and before
                          the CPU profile, so that what is measured runs compiled code (default 3; quick 1; 0: none)
  --concurrency LIST      closed-loop clients per run (default 1,16,64,256)
  --value-bytes N         value size (default 256)
  --generators N          load generator processes per run (default 1)
  --soak-minutes M        minutes of the pgraft c=64 memory soak, fractions allowed (default 10; quick 1)
  --failover-trials N     trials per signal and system (default 20; quick 3)
  --sql-iterations N      calls of pgraft_get_leader(); half as many of pgraft_kv_put (default 2000; quick 200)
  --restart-entries N     log entries for the restart measurement (default 1000000; quick 100000)
  --restart-runs N        restarts timed without and with a snapshot, each (default 2; quick 1)
  --phases LIST           any of ${PHASES.join(',')} (default all; quick: all but profile)
  --no-profile            skip the CPU profile
  --profile-concurrency N clients during the CPU profile (default 64)
  --no-record             do not write bench/results (latest.json, history.jsonl)
  --max-minutes N         stop everything and fail after this long (default 45, plus the soak's minutes)
`;

function parseArgs(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const o: Options = {
    quick,
    durationSec: quick ? 2 : 10,
    warmupSec: quick ? 0.5 : 1,
    prewarmSec: quick ? 1 : 3,
    idleSec: quick ? 1 : 3,
    concurrency: [1, 16, 64, 256],
    valueBytes: 256,
    keys: 10_000,
    generators: 1,
    soakMinutes: quick ? 1 : 10,
    failoverTrials: quick ? 3 : 20,
    sqlIterations: quick ? 200 : 2000,
    restartEntries: quick ? 100_000 : 1_000_000,
    restartRuns: quick ? 1 : 2,
    phases: quick ? PHASES.filter((p) => p !== 'profile') : [...PHASES],
    maxMinutes: 45,
    results: path.join(REPO, 'bench', 'results'),
    record: true,
    profileConcurrency: 64,
  };
  const num = (v: string | undefined, flag: string) => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n <= 0) throw new Error(`${flag} needs a positive number`);
    return n;
  };
  let maxMinutesGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    switch (a) {
      case '--quick': break;
      case '--duration': o.durationSec = num(next(), a); break;
      case '--warmup': o.warmupSec = Number(next()); break;
      case '--prewarm': {
        const v = Number(next());
        if (!Number.isFinite(v) || v < 0) throw new Error(`${a} needs a number of seconds, 0 or more`);
        o.prewarmSec = v;
        break;
      }
      case '--concurrency': o.concurrency = next().split(',').map((v) => num(v, a)); break;
      case '--value-bytes': o.valueBytes = num(next(), a); break;
      case '--generators': o.generators = num(next(), a); break;
      case '--soak-minutes': o.soakMinutes = num(next(), a); break;
      case '--failover-trials': o.failoverTrials = num(next(), a); break;
      case '--sql-iterations': o.sqlIterations = num(next(), a); break;
      case '--restart-entries': o.restartEntries = num(next(), a); break;
      case '--restart-runs': o.restartRuns = num(next(), a); break;
      case '--phases': {
        const ps = next().split(',');
        const bad = ps.filter((p) => !(PHASES as readonly string[]).includes(p));
        if (bad.length) throw new Error(`unknown phase ${bad.join(', ')}; phases are ${PHASES.join(', ')}`);
        o.phases = ps as Phase[];
        break;
      }
      case '--no-profile': o.phases = o.phases.filter((p) => p !== 'profile'); break;
      case '--no-record': o.record = false; break;
      case '--profile-concurrency': o.profileConcurrency = num(next(), a); break;
      case '--max-minutes': o.maxMinutes = num(next(), a); maxMinutesGiven = true; break;
      case '--help': case '-h': process.stdout.write(HELP); process.exit(0); break; // eslint-disable-line no-fallthrough
      default: throw new Error(`unknown option ${a}\n\n${HELP}`);
    }
  }
  // The soak's length is chosen on its own; the default bound must not cut it short.
  if (!maxMinutesGiven && o.phases.includes('soak')) o.maxMinutes += o.soakMinutes;
  return o;
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: REPO, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return '';
  }
}

/**
 * fdatasync latency of 4 kB writes in the temporary directory, what any fsyncing log pays here:
 * rewriting blocks already allocated (what a preallocated log file pays) and appending (the
 * file grows, so its size must be made durable too).
 */
function fsyncProbe(): Machine['fsyncProbe'] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgraft-bench-fsync-'));
  trackDir(dir);
  const buf = Buffer.alloc(4096, 1);
  const probe = (name: string, position: (i: number) => number) => {
    const fd = fs.openSync(path.join(dir, name), 'w');
    const lat: number[] = [];
    const end = performance.now() + 1000;
    for (let i = 0; performance.now() < end && i < 2000; i++) {
      const t = performance.now();
      fs.writeSync(fd, buf, 0, buf.length, position(i));
      fs.fdatasyncSync(fd);
      lat.push(performance.now() - t);
    }
    fs.closeSync(fd);
    return lat.sort((a, b) => a - b);
  };
  const rewrite = probe('rewrite', (i) => (i % 16) * 4096);
  const append = probe('append', (i) => i * 4096);
  fs.rmSync(dir, { recursive: true, force: true });
  return {
    p50Ms: round(quantile(rewrite, 0.5), 3),
    p99Ms: round(quantile(rewrite, 0.99), 3),
    appendP50Ms: round(quantile(append, 0.5), 3),
    appendP99Ms: round(quantile(append, 0.99), 3),
  };
}

function log(s: string): void {
  process.stdout.write(`${s}\n`);
}

async function main(): Promise<void> {
  installCleanupHandlers();
  const o = parseArgs(process.argv.slice(2));
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench: not finished after ${o.maxMinutes} minutes; stopping everything\n`);
    cleanupSync();
    process.exit(1);
  }, o.maxMinutes * 60_000);
  watchdog.unref();
  const started = performance.now();
  const loadStart = os.loadavg();
  const cpus = os.cpus();
  const has = (p: Phase) => o.phases.includes(p);
  const needClusters = has('throughput') || has('soak') || has('failover') || has('profile');
  if (loadStart[0] > cpus.length / 2) {
    log(`warning: load average ${loadStart[0].toFixed(2)} on ${cpus.length} CPUs: other work is running; the figures will be noisy`);
  }
  const etcdVersion = needClusters ? ensureEtcd(log) : null;
  const machine: Machine = {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? '?',
    memoryGB: round(os.totalmem() / 2 ** 30, 1),
    kernel: os.release(),
    node: process.version,
    etcd: etcdVersion,
    loadAverageStart: loadStart.map((v) => round(v, 2)),
    loadAverageEnd: [],
    busyAtStart: loadStart[0] > cpus.length / 2,
    fsyncProbe: fsyncProbe(),
    chainProbe: null,
  };
  log(`machine: ${machine.cpus} CPUs, load average ${machine.loadAverageStart.join(' ')}, fdatasync p50 ${machine.fsyncProbe.p50Ms} ms (appending: ${machine.fsyncProbe.appendP50Ms} ms); etcd ${etcdVersion ?? '-'}`);
  if (has('throughput')) {
    machine.chainProbe = await runChainProbe({ prewarmMs: o.prewarmSec * 1000, prewarmConcurrency: PREWARM_CONCURRENCY, durationMs: o.durationSec * 1000, valueBytes: o.valueBytes });
    log(`reference chain, no consensus software: c=1 p50 ${machine.chainProbe.p50Ms} ms, p99 ${machine.chainProbe.p99Ms} ms`);
  }

  let throughput: ThroughputResult | null = null;
  let failover: FailoverResult | null = null;
  let profile: ProfileResult | null = null;
  let resources: Resources | null = null;
  let soak: SoakResult | null = null;
  let sql: SqlResult | null = null;
  let restart: RestartResult | null = null;
  const load = {
    warmupMs: o.warmupSec * 1000,
    durationMs: o.durationSec * 1000,
    valueBytes: o.valueBytes,
    keys: o.keys,
    generatorProcesses: o.generators,
  };

  if (needClusters) {
    log('starting a 3-node pgraft cluster and a 3-node etcd cluster on 127.0.0.1');
    const pg = await PgraftCluster.create(3);
    const etcd = await EtcdCluster.create(os.tmpdir(), 3);
    await Promise.all([pg.startAll(), etcd.startAll()]);
    if (has('throughput')) {
      const prewarmNote = o.prewarmSec > 0 ? `; first ${o.prewarmSec} s at c=${PREWARM_CONCURRENCY} on each system, not measured` : '';
      log(`throughput (${o.durationSec} s per run after ${o.warmupSec} s warm-up${prewarmNote})`);
      const rss = new RssSampler(() => pg.procs(), 500);
      const prewarm = { prewarmMs: o.prewarmSec * 1000, prewarmConcurrency: PREWARM_CONCURRENCY };
      throughput = await runThroughput(pg, etcd, { concurrency: o.concurrency, idleMs: o.idleSec * 1000, ...prewarm, ...load }, rss, log);
      const samples = rss.stop();
      const c64 = throughput.runs.find((r) => r.system === 'pgraft' && r.concurrency === 64);
      const idle = throughput.idleBefore.find((i) => i.system === 'pgraft')!.servers;
      resources = {
        idle: idle.map((u: CpuUse) => ({ label: u.label, cpuPercent: round(u.cpuPercent, 2), rssMB: round(u.rssMB, 1) })),
        underLoad: c64
          ? c64.servers.map((s) => ({
              label: s.label,
              role: s.role,
              cpuPercent: round(s.cpuPercent, 1),
              maxRssMB: Math.max(...samples.filter((x) => x.label === s.label && x.phase === 'pgraft c=64').map((x) => x.rssMB), s.rssMB),
            }))
          : [],
        flat: flatness(samples),
        samples,
      };
    }
    // Before failover, which kills and restarts agents: the soak measures the agents that ran
    // the throughput phase, on top of everything they kept from it.
    if (has('soak')) {
      log(`soak: pgraft alone at c=${SOAK_CONCURRENCY} for ${o.soakMinutes} min, every agent's RSS every ${SOAK_SAMPLE_SEC} s`);
      soak = await runSoak(pg, { minutes: o.soakMinutes, valueBytes: o.valueBytes, keys: o.keys, generatorProcesses: o.generators }, log);
    }
    if (has('failover')) {
      log(`failover (${o.failoverTrials} trials per signal and system)`);
      failover = await runFailover([pgraftSubject(pg), etcdSubject(etcd)], o.failoverTrials, log);
    }
    await etcd.stopAll();
    if (has('profile')) {
      const pc = o.profileConcurrency;
      log(`CPU profile of the pgraft leader at c=${pc}`);
      // The agents restart under the profiler: their code is compiled again during the warm-up.
      const warmupMs = (o.warmupSec + o.prewarmSec) * 1000;
      profile = await runProfile(pg, { concurrency: pc, ...load, warmupMs }, path.join(o.results, `pgraft-leader-c${pc}.cpuprofile`), log);
    }
    await pg.stopAll();
    await cleanupAgents();
  }
  if (has('sql')) {
    log('SQL surface: 3 PostgreSQL servers, each with its agent');
    sql = await runSql(o.sqlIterations, o.valueBytes, log);
    await cleanupAgents();
  }
  if (has('restart')) {
    log(`restart with ${o.restartEntries} log entries`);
    restart = await runRestart(o.restartEntries, o.restartRuns, o.valueBytes, log);
    await cleanupAgents();
  }

  machine.loadAverageEnd = os.loadavg().map((v) => round(v, 2));
  const partial = {
    date: new Date().toISOString(),
    commit: git(['rev-parse', 'HEAD']),
    dirty: git(['status', '--porcelain', '--', 'agent', 'bench', 'package.json', ':(exclude)bench/results']) !== '',
    quick: o.quick,
    machine,
    options: { ...o, results: path.relative(REPO, o.results) } as Record<string, unknown>,
    throughput,
    failover,
    sql,
    resources,
    soak,
    restart,
    profile,
    durationSec: (performance.now() - started) / 1000,
  };
  const results: Results = { ...partial, targets: evaluateTargets(partial) };
  log('');
  log(render(results));
  if (o.record) {
    save(results, o.results);
    log(`\nwritten: ${path.relative(REPO, path.join(o.results, 'latest.json'))}, appended to ${path.relative(REPO, path.join(o.results, 'history.jsonl'))}`);
  }
}

main().then(
  () => {
    cleanupSync();
    process.exit(0);
  },
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    cleanupSync();
    process.exit(1);
  },
);
