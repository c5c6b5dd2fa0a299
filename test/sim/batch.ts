import { reproduceCommand, runSeed, SeedResult } from './simulator';

/** Totals over a range of seeds, and one line per failing seed. */
export interface BatchResult {
  runs: number;
  steps: number;
  leaders: number;
  snapshotsSent: number;
  confChanges: number;
  leaderRemovals: number;
  readsServed: number;
  /** Runs that used the agent loop; leader messages those sent before their write; steps taken while a write was in flight. */
  agentRuns: number;
  sentBeforeWrite: number;
  steppedWhileWriting: number;
  /** Leaders cut off at a moment of Figure 8. */
  figure8Isolations: number;
  /** Longest time any run took to recover after healing, in ticks. */
  slowestRecovery: number;
  /** "seed S (N nodes): <failure>\n  reproduce: <command>" for each failing seed. */
  failures: string[];
}

export function emptyBatch(): BatchResult {
  return {
    runs: 0,
    steps: 0,
    leaders: 0,
    snapshotsSent: 0,
    confChanges: 0,
    leaderRemovals: 0,
    readsServed: 0,
    agentRuns: 0,
    sentBeforeWrite: 0,
    steppedWhileWriting: 0,
    figure8Isolations: 0,
    slowestRecovery: 0,
    failures: [],
  };
}

export function addResult(b: BatchResult, r: SeedResult, chaosTicks?: number): string | null {
  b.runs++;
  b.steps += r.steps;
  b.leaders += r.stats.leaders;
  b.snapshotsSent += r.stats.snapshotsSent;
  b.confChanges += r.stats.confChanges;
  b.leaderRemovals += r.stats.leaderRemovals;
  b.readsServed += r.stats.readsServed;
  b.agentRuns += r.stats.agentLoop;
  b.sentBeforeWrite += r.stats.sentBeforeWrite;
  b.steppedWhileWriting += r.stats.steppedWhileWriting;
  b.figure8Isolations += r.stats.figure8Isolations;
  b.slowestRecovery = Math.max(b.slowestRecovery, r.stats.recoveryTicks);
  if (r.failure === null) return null;
  const line = `seed ${r.seed} (${r.nodes} nodes): ${r.failure}\n  reproduce: ${reproduceCommand(r, chaosTicks)}`;
  b.failures.push(line);
  return line;
}

/** Runs seeds from..to (inclusive) on clusters of `nodes` founding voters. */
export function runSeedRange(nodes: number, from: number, to: number): BatchResult {
  const b = emptyBatch();
  for (let seed = from; seed <= to; seed++) addResult(b, runSeed(seed, { nodes }));
  return b;
}
