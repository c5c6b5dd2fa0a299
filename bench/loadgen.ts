/**
 * The closed-loop load generator, run in child processes so that its CPU is its own and can
 * be measured (and spread over several processes when one is not enough).
 *
 * Each of `concurrency` clients sends one write, waits for the answer, and sends the next.
 * Only writes sent after the warm-up and answered before the end of the window count, for
 * throughput and for latency alike.
 */
import { fork } from 'node:child_process';
import * as path from 'node:path';
import { trackPid, untrackPid } from './cleanup';
import { makeValue, prepareWrite, System } from './kv_request';
import { RawConnection, requestBytes } from './raw_http';
import { LatencySummary, summarize } from './stats';

export interface LoadSpec {
  system: System;
  port: number;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  valueBytes: number;
  /** Writes cycle over this many distinct keys. */
  keys: number;
  /** Prefix that keeps the keys of one process apart from another's. */
  keyPrefix: string;
}

interface ChildResult {
  /** Writes answered 200 in the window; latenciesUs holds the first 2,000,000 of them. */
  ops: number;
  latenciesUs: Float64Array;
  errors: number;
  statuses: Record<string, number>;
  cpuMs: number;
  windowMs: number;
}

export interface LoadResult {
  system: System;
  concurrency: number;
  durationMs: number;
  ops: number;
  opsPerSec: number;
  errors: number;
  statuses: Record<string, number>;
  /** Microseconds. */
  latencyUs: LatencySummary;
  generator: { processes: number; cpuPercentEach: number[] };
}

/** Runs one load phase split over `processes` generator processes; resolves with the merged result. */
export async function runLoad(spec: LoadSpec, processes: number): Promise<LoadResult> {
  const n = Math.max(1, Math.min(processes, spec.concurrency));
  const shares = Array.from({ length: n }, (_, i) => Math.floor(spec.concurrency / n) + (i < spec.concurrency % n ? 1 : 0));
  const results = await Promise.all(shares.map((c, i) => runChild({ ...spec, concurrency: c, keyPrefix: `${spec.keyPrefix}p${i}-` })));
  const ops = results.reduce((s, r) => s + r.ops, 0);
  const all = new Float64Array(results.reduce((s, r) => s + r.latenciesUs.length, 0));
  let at = 0;
  const statuses: Record<string, number> = {};
  for (const r of results) {
    all.set(r.latenciesUs, at);
    at += r.latenciesUs.length;
    for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
  }
  return {
    system: spec.system,
    concurrency: spec.concurrency,
    durationMs: spec.durationMs,
    ops,
    opsPerSec: ops / (spec.durationMs / 1000),
    errors: results.reduce((s, r) => s + r.errors, 0),
    statuses,
    latencyUs: summarize(all),
    generator: { processes: n, cpuPercentEach: results.map((r) => (r.cpuMs / r.windowMs) * 100) },
  };
}

function runChild(spec: LoadSpec): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(__dirname, 'loadgen.js'), ['--child'], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    trackPid(child.pid);
    let result: ChildResult | null = null;
    const limit = setTimeout(() => child.kill('SIGKILL'), spec.warmupMs + spec.durationMs + 60_000);
    child.on('message', (m) => (result = m as ChildResult));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      untrackPid(child.pid);
      clearTimeout(limit);
      if (result) resolve(result);
      else reject(new Error(`load generator exited without a result (code ${code}, signal ${signal})`));
    });
    child.send(spec);
  });
}

async function childMain(spec: LoadSpec): Promise<ChildResult> {
  const value = makeValue(spec.valueBytes);
  const writes = Array.from({ length: spec.keys }, (_, i) => requestBytes(spec.port, prepareWrite(spec.system, `${spec.keyPrefix}${i}`, value)));
  const connections: RawConnection[] = [];
  // Enough for a 10-second run at any rate; a long run (the soak) counts every write but keeps
  // only the first latencies.
  const latencies = new Float64Array(2_000_000);
  let ops = 0;
  let count = 0;
  let errors = 0;
  const statuses: Record<string, number> = {};
  const start = performance.now() + spec.warmupMs;
  const end = start + spec.durationMs;
  let cpuAtStart = process.cpuUsage();
  const atStart = setTimeout(() => (cpuAtStart = process.cpuUsage()), spec.warmupMs);
  let cpuAtEnd: NodeJS.CpuUsage | null = null;
  const atEnd = setTimeout(() => (cpuAtEnd = process.cpuUsage(cpuAtStart)), spec.warmupMs + spec.durationMs);

  const client = async (id: number) => {
    const conn = new RawConnection(spec.port);
    connections.push(conn);
    let k = (id * 7) % writes.length;
    while (performance.now() < end) {
      const w = writes[k];
      k = (k + 1) % writes.length;
      const t0 = performance.now();
      let status: number;
      try {
        status = await conn.send(w);
      } catch {
        status = 0;
      }
      const t1 = performance.now();
      const counted = t0 >= start && t1 <= end;
      if (counted) statuses[status] = (statuses[status] ?? 0) + 1;
      if (status === 200) {
        if (counted) ops++;
        if (counted && count < latencies.length) latencies[count++] = (t1 - t0) * 1000;
      } else {
        if (counted) errors++;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  };
  // A server that stops answering must not hold the generator: 10 s after the end, hang up.
  const hangUp = setTimeout(() => connections.forEach((c) => c.close()), spec.warmupMs + spec.durationMs + 10_000);
  await Promise.all(Array.from({ length: spec.concurrency }, (_, i) => client(i)));
  clearTimeout(hangUp);
  clearTimeout(atStart);
  clearTimeout(atEnd);
  const cpu = cpuAtEnd ?? process.cpuUsage(cpuAtStart);
  for (const c of connections) c.close();
  return { ops, latenciesUs: latencies.slice(0, count), errors, statuses, cpuMs: (cpu.user + cpu.system) / 1000, windowMs: spec.durationMs };
}

if (require.main === module && process.argv.includes('--child')) {
  process.once('message', (spec) => {
    childMain(spec as LoadSpec).then(
      (r) => process.send!(r, () => process.exit(0)),
      (e: Error) => {
        process.stderr.write(`load generator: ${e.stack ?? e.message}\n`);
        process.exit(1);
      },
    );
  });
}
