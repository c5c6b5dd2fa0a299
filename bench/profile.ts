/**
 * A CPU profile of the pgraft leader under the c=64 load: the agents are restarted with
 * node's --cpu-prof (written when the process exits), the load runs, the agents stop with
 * SIGTERM, and the leader's profile is kept and summarized: the functions and the files that
 * use the most CPU themselves (self time) during the measured load window, as percent of the
 * time the process was not idle.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO } from './paths';
import { trackDir } from './cleanup';
import { runLoad } from './loadgen';
import { PgraftCluster } from './pgraft';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface FrameShare {
  name: string;
  selfMs: number;
  /** Percent of the non-idle time. */
  percent: number;
}

export interface ProfileResult {
  file: string;
  concurrency: number;
  opsPerSec: number;
  /** The samples summarized: the measured load window, or the whole profile if it could not be placed. */
  window: 'load' | 'whole profile';
  totalMs: number;
  busyMs: number;
  topFunctions: FrameShare[];
  topFiles: FrameShare[];
}

function shortUrl(url: string): string {
  if (!url) return '(native)';
  return url.replace(/^file:\/\//, '').replace(`${REPO}/`, '');
}

/**
 * Self time by function and by file. `window` (µs on the monotonic clock, which V8's profile
 * timestamps and process.hrtime share on Linux) keeps only the samples taken inside it.
 */
export function summarizeProfile(p: CpuProfile, window: [number, number] | null, top = 15): Omit<ProfileResult, 'file' | 'concurrency' | 'opsPerSec'> {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  let at = p.startTime;
  let inside = 0;
  for (let i = 0; i < p.samples.length; i++) {
    at += p.timeDeltas[i] ?? 0;
    const dt = p.timeDeltas[i + 1] ?? 0; // a sample's time runs until the next one
    if (window && (at < window[0] || at > window[1])) continue;
    inside++;
    selfUs.set(p.samples[i], (selfUs.get(p.samples[i]) ?? 0) + dt);
  }
  if (window && inside === 0) return summarizeProfile(p, null, top);
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const cf = byId.get(id)!.callFrame;
    total += us;
    if (cf.functionName === '(idle)') {
      idle += us;
      continue;
    }
    const where = shortUrl(cf.url);
    const name = `${cf.functionName || '(anonymous)'} ${cf.url ? `${where}:${cf.lineNumber + 1}` : ''}`.trim();
    fn.set(name, (fn.get(name) ?? 0) + us);
    const f = cf.url ? where : cf.functionName;
    file.set(f, (file.get(f) ?? 0) + us);
  }
  const busy = total - idle;
  const rank = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, selfMs: Math.round(us / 1000), percent: Math.round((us / busy) * 1000) / 10 }));
  return { window: window ? 'load' : 'whole profile', totalMs: Math.round(total / 1000), busyMs: Math.round(busy / 1000), topFunctions: rank(fn), topFiles: rank(file) };
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
  const summary = summarizeProfile(JSON.parse(fs.readFileSync(outFile, 'utf8')) as CpuProfile, [from, from + o.durationMs * 1000]);
  log(`  profiled leader pgraft-${leader.id} at c=${o.concurrency}: ${r.opsPerSec.toFixed(0)} ops/s under the profiler; ${path.relative(REPO, outFile)}`);
  return { file: path.relative(REPO, outFile), concurrency: o.concurrency, opsPerSec: r.opsPerSec, ...summary };
}
