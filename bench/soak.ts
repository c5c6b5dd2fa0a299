/**
 * Memory over a long run: pgraft alone under the c=64 load for minutes (10 in a full run),
 * every agent's RSS sampled every 5 s. A leak too slow to show in a 10-second run keeps RSS
 * climbing to the end of this one; a working set stops growing early.
 *
 * Flat: the peak of the run's last fifth is at most FLAT_GROWTH_PERCENT above the peak of its
 * first fifth. Peaks rather than single samples, so that where a garbage collection happens to
 * fall does not decide; fifths, so that the first one holds the filling of the working set
 * (there is no warm-up: memory from the first write on counts).
 */
import { runLoad } from './loadgen';
import { PgraftCluster } from './pgraft';
import { RssSample, RssSampler } from './procstat';
import { FLAT_GROWTH_PERCENT } from './report';
import { round, sleep } from './stats';

export const SOAK_CONCURRENCY = 64;
export const SOAK_SAMPLE_SEC = 5;
const PHASE = 'pgraft soak';

export interface SoakOptions {
  minutes: number;
  valueBytes: number;
  keys: number;
  generatorProcesses: number;
}

export interface SoakAgent {
  label: string;
  /** Role when the soak started. */
  role: 'leader' | 'follower';
  firstFifthPeakMB: number;
  peakMB: number;
  /** Peak of the agent's own memory (RssAnon); RSS adds the node executable's shared pages. */
  peakAnonMB: number;
  lastMB: number;
  lastFifthPeakMB: number;
  /** (last fifth's peak - first fifth's peak) / first fifth's peak, percent. */
  growthPercent: number;
  flat: boolean;
}

export interface SoakResult {
  minutes: number;
  concurrency: number;
  sampleIntervalSec: number;
  opsPerSec: number;
  errors: number;
  agents: SoakAgent[];
  samples: RssSample[];
}

/** One agent's figures from its samples during the soak (NaN everywhere, and not flat, without any). */
function soakFigures(label: string, role: SoakAgent['role'], samples: RssSample[]): SoakAgent {
  const mine = samples.filter((s) => s.label === label && s.phase === PHASE);
  const rss = mine.map((s) => s.rssMB);
  const fifth = Math.max(1, Math.floor(rss.length / 5));
  const peak = (xs: number[]) => (xs.length ? Math.max(...xs) : NaN);
  const first = peak(rss.slice(0, fifth));
  const last = peak(rss.slice(-fifth));
  const growth = ((last - first) / first) * 100;
  return {
    label,
    role,
    firstFifthPeakMB: first,
    peakMB: peak(rss),
    peakAnonMB: peak(mine.map((s) => s.anonMB)),
    lastMB: rss.length ? rss[rss.length - 1] : NaN,
    lastFifthPeakMB: last,
    growthPercent: round(growth, 1),
    flat: growth <= FLAT_GROWTH_PERCENT,
  };
}

/** Every agent's latest sample, for the progress line. */
function latest(samples: RssSample[], labels: string[]): string {
  return labels
    .map((l) => {
      const mine = samples.filter((s) => s.label === l);
      return `${l} ${mine.length ? mine[mine.length - 1].rssMB.toFixed(0) : '-'} MB`;
    })
    .join(', ');
}

export async function runSoak(pg: PgraftCluster, o: SoakOptions, log: (s: string) => void): Promise<SoakResult> {
  const leader = await pg.settle();
  const leaderLabel = `pgraft-${leader.id}`;
  const labels = pg.procs().map((p) => p.label);
  const durationMs = o.minutes * 60_000;
  const rss = new RssSampler(() => pg.procs(), SOAK_SAMPLE_SEC * 1000);
  rss.phase = PHASE;
  const load = runLoad(
    { system: 'pgraft', port: leader.apiPort, concurrency: SOAK_CONCURRENCY, warmupMs: 0, durationMs, valueBytes: o.valueBytes, keys: o.keys, keyPrefix: 'soak-' },
    o.generatorProcesses,
  );
  // A line a minute, so that a long soak shows it is alive and where memory is going.
  const end = performance.now() + durationMs;
  for (let minute = 1; performance.now() < end; minute++) {
    await sleep(Math.min(60_000, end - performance.now()));
    if (performance.now() < end - 1000) log(`  ${minute} min: RSS ${latest(rss.samples, labels)}`);
  }
  rss.sample(); // the last sample at the end of the window, wherever the interval stands
  rss.phase = 'idle';
  const result = await load;
  const samples = rss.stop();
  const agents = labels.map((l) => soakFigures(l, l === leaderLabel ? 'leader' : 'follower', samples));
  log(`  pgraft c=${SOAK_CONCURRENCY} for ${o.minutes} min: ${result.opsPerSec.toFixed(0)} ops/s  errors ${result.errors}`);
  for (const a of agents) {
    log(
      `  ${a.label} ${a.role.padEnd(8)} RSS first fifth ${a.firstFifthPeakMB.toFixed(0)} MB, peak ${a.peakMB.toFixed(0)}, last ${a.lastMB.toFixed(0)}, ` +
        `last fifth ${a.lastFifthPeakMB.toFixed(0)}: growth ${a.growthPercent.toFixed(1)}% ${a.flat ? 'flat' : 'NOT flat'}`,
    );
  }
  return { minutes: o.minutes, concurrency: SOAK_CONCURRENCY, sampleIntervalSec: SOAK_SAMPLE_SEC, opsPerSec: result.opsPerSec, errors: result.errors, agents, samples };
}
