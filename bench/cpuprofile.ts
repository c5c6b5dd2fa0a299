/**
 * Reading node's .cpuprofile files (V8's Profiler.Profile): which function each sample was
 * in, self time by function and by file over a window of the run. No I/O here.
 */
import { REPO } from './paths';

export interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

export interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

/** The parts of node's .cpuprofile (V8's Profiler.Profile) read here. */
export interface CpuProfile {
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

export interface ProfileSummary {
  /** The samples summarized: the measured load window, or the whole profile if it could not be placed. */
  window: 'load' | 'whole profile';
  totalMs: number;
  busyMs: number;
  topFunctions: FrameShare[];
  topFiles: FrameShare[];
}

/** The function name V8 gives the samples taken while the process waited. */
export const IDLE = '(idle)';

function shortUrl(url: string): string {
  if (!url) return '(native)';
  return url.replace(/^file:\/\//, '').replace(`${REPO}/`, '');
}

/** A function as the summaries and flame graphs name it: name, then file:line (1-based). */
export function frameName(cf: CallFrame): string {
  return `${cf.functionName || '(anonymous)'} ${cf.url ? `${shortUrl(cf.url)}:${cf.lineNumber + 1}` : ''}`.trim();
}

/**
 * Microseconds sampled in each profile node (its self time), counting only the samples
 * taken inside `window` when one is given: a sample's time runs until the next sample.
 */
export function selfTimeByNode(p: CpuProfile, window: [number, number] | null): Map<number, number> {
  const selfUs = new Map<number, number>();
  let at = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    at += p.timeDeltas[i] ?? 0;
    const dt = p.timeDeltas[i + 1] ?? 0;
    if (window && (at < window[0] || at > window[1])) continue;
    selfUs.set(p.samples[i], (selfUs.get(p.samples[i]) ?? 0) + dt);
  }
  return selfUs;
}

/**
 * Self time by function and by file. `window` (µs on the monotonic clock, which V8's profile
 * timestamps and process.hrtime share on Linux) keeps only the samples taken inside it.
 */
export function summarizeProfile(p: CpuProfile, window: [number, number] | null, top = 15): ProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = selfTimeByNode(p, window);
  if (window && selfUs.size === 0) return summarizeProfile(p, null, top);
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const cf = byId.get(id)!.callFrame;
    total += us;
    if (cf.functionName === IDLE) {
      idle += us;
      continue;
    }
    const name = frameName(cf);
    fn.set(name, (fn.get(name) ?? 0) + us);
    const f = cf.url ? shortUrl(cf.url) : cf.functionName;
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
