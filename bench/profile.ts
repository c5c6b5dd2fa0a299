/**
 * A CPU profile of the pgraft leader under the c=64 load: the agents are restarted with
 * node's --cpu-prof (written when the process exits), the load runs, the agents stop with
 * SIGTERM, and the leader's profile is kept and summarized: the functions and the files that
 * use the most CPU themselves (self time) during the measured load window, as percent of the
 * time the process was not idle, and a flame graph of that window (flamegraph.ts).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO } from './paths';
import { trackDir } from './cleanup';
import { CpuProfile, ProfileSummary, summarizeProfile } from './cpuprofile';
import { flameGraphSvg, foldedText, foldStacks } from './flamegraph';
import { runLoad } from './loadgen';
import { PgraftCluster } from './pgraft';

export interface ProfileResult extends ProfileSummary {
  file: string;
  /** The load window's flame graph (SVG), and its stacks folded for other tools. */
  flameGraph: string;
  folded: string;
  concurrency: number;
  opsPerSec: number;
}

export async function runProfile(
  c: PgraftCluster,
  o: { concurrency: number; warmupMs: number; durationMs: number; valueBytes: number; keys: number; generatorProcesses: number },
  outFile: string,
  log: (s: string) => void,
): Promise<ProfileResult> {
  await c.stopAll();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgraft-bench-prof-'));
  trackDir(dir);
  const leader = await c.startAll(['--cpu-prof', `--cpu-prof-dir=${dir}`]);
  const pid = leader.p.pid;
  const from = Number(process.hrtime.bigint() / 1000n) + o.warmupMs * 1000;
  const r = await runLoad(
    { system: 'pgraft', port: leader.apiPort, concurrency: o.concurrency, warmupMs: o.warmupMs, durationMs: o.durationMs, valueBytes: o.valueBytes, keys: o.keys, keyPrefix: 'prof-' },
    o.generatorProcesses,
  );
  await c.stopAll();
  const name = fs.readdirSync(dir).find((f) => f.includes(`.${pid}.`) && f.endsWith('.cpuprofile'));
  if (!name) throw new Error(`no CPU profile of the leader (pid ${pid}) in ${dir}: ${fs.readdirSync(dir).join(', ')}`);
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.copyFileSync(path.join(dir, name), outFile);
  const profile = JSON.parse(fs.readFileSync(outFile, 'utf8')) as CpuProfile;
  const window: [number, number] = [from, from + o.durationMs * 1000];
  const summary = summarizeProfile(profile, window);
  const folded = foldStacks(profile, summary.window === 'load' ? window : null);
  const base = outFile.replace(/\.cpuprofile$/, '');
  fs.writeFileSync(`${base}.folded`, foldedText(folded));
  const title = `pgraft leader at c=${o.concurrency}: ${r.opsPerSec.toFixed(0)} ops/s under the profiler (${summary.window})`;
  fs.writeFileSync(`${base}.svg`, flameGraphSvg(folded, title));
  log(`  profiled leader pgraft-${leader.id} at c=${o.concurrency}: ${r.opsPerSec.toFixed(0)} ops/s under the profiler; ${path.relative(REPO, outFile)}, flame graph ${path.relative(REPO, `${base}.svg`)}`);
  return {
    file: path.relative(REPO, outFile),
    flameGraph: path.relative(REPO, `${base}.svg`),
    folded: path.relative(REPO, `${base}.folded`),
    concurrency: o.concurrency,
    opsPerSec: r.opsPerSec,
    ...summary,
  };
}
