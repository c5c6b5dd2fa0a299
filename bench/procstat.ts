/**
 * Resident memory and CPU time of a process from /proc/<pid>/stat and /proc/<pid>/status,
 * and samplers built on them: CPU used over a window, RSS sampled over a run.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';

let ticksPerSecond: number | null = null;

function clockTicks(): number {
  if (ticksPerSecond === null) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

export interface ProcReading {
  /** User plus system CPU time used since the process started, in milliseconds. */
  cpuMs: number;
  rssBytes: number;
  /**
   * The part of RSS that is the process's own memory (RssAnon: heap, stacks, buffers); the
   * rest is mapped files, mostly the node executable, whose pages every node process shares.
   */
  anonBytes: number;
}

/** One reading, or null when the process is gone. */
export function readProc(pid: number): ProcReading | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; the fields after it are plain numbers.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kB = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { cpuMs: ((utime + stime) * 1000) / clockTicks(), rssBytes: kB('VmRSS'), anonBytes: kB('RssAnon') };
  } catch {
    return null;
  }
}

export interface Labelled {
  label: string;
  pid: number;
}

export interface CpuUse {
  label: string;
  pid: number;
  /** Percent of one CPU over the window. */
  cpuPercent: number;
  rssMB: number;
}

/** CPU used by each process between start() and stop(), as percent of one CPU. */
export class CpuWindow {
  private readonly t0 = performance.now();
  private readonly before: Map<number, number>;

  constructor(private readonly procs: Labelled[]) {
    this.before = new Map(procs.map((p) => [p.pid, readProc(p.pid)?.cpuMs ?? NaN]));
  }

  stop(): CpuUse[] {
    const wall = performance.now() - this.t0;
    return this.procs.map((p) => {
      const r = readProc(p.pid);
      const cpu = r ? ((r.cpuMs - this.before.get(p.pid)!) / wall) * 100 : NaN;
      return { label: p.label, pid: p.pid, cpuPercent: cpu, rssMB: r ? r.rssBytes / 2 ** 20 : NaN };
    });
  }
}

export interface RssSample {
  /** Seconds since the sampler started. */
  t: number;
  label: string;
  rssMB: number;
  /** The process's own memory (see ProcReading.anonBytes). */
  anonMB: number;
  /** What the run was doing (the load phase's name, or idle). */
  phase: string;
}

const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;

/** Samples the RSS of a changing set of processes at a fixed interval. */
export class RssSampler {
  readonly samples: RssSample[] = [];
  phase = 'idle';
  private readonly t0 = performance.now();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly procs: () => Labelled[],
    intervalMs: number,
  ) {
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
    this.sample();
  }

  sample(): void {
    const t = (performance.now() - this.t0) / 1000;
    for (const p of this.procs()) {
      const r = readProc(p.pid);
      if (r) this.samples.push({ t: Math.round(t * 10) / 10, label: p.label, rssMB: mb(r.rssBytes), anonMB: mb(r.anonBytes), phase: this.phase });
    }
  }

  stop(): RssSample[] {
    clearInterval(this.timer);
    return this.samples;
  }
}
