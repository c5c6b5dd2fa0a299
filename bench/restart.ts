/**
 * Restart time of an agent whose log holds many entries (1,000,000 by default), without and
 * with a snapshot.
 *
 * A one-node cluster is bootstrapped by the agent itself and stopped; the entries (256-byte
 * puts over 100,000 keys, committed) are then appended to its data directory with DiskStorage,
 * the agent's own storage code, which is much faster than writing them through the cluster.
 * snapshot_interval is set out of reach so that the agent never snapshots by itself. Each
 * restart is timed from spawn to: the API answering /v1/status (the log is read), the state
 * machine having applied the whole log, and /health answering 200 (it leads again). Then a
 * snapshot is taken through the API (POST /v1/snapshot) and the restarts are timed again.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeProposal, Op } from '../agent/fsm/commands';
import { Entry, EntryType } from '../agent/raft/types';
import { DiskStorage } from '../agent/storage';
import { jsonCall, makeValue } from './kv_request';
import { PgraftCluster } from './pgraft';
import { readProc } from './procstat';
import { sleep } from './stats';

export interface RestartRun {
  snapshot: boolean;
  /** Spawn to the first answer of GET /v1/status: the log has been read. */
  apiMs: number;
  /** Spawn to appliedIndex reaching the log's end: the state machine is rebuilt. */
  appliedMs: number;
  /** Spawn to GET /health answering 200. */
  healthyMs: number;
  rssMB: number;
}

export interface RestartResult {
  entries: number;
  keys: number;
  valueBytes: number;
  writeMs: number;
  logBytes: number;
  snapshotBytes: number;
  runs: RestartRun[];
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    total += e.isDirectory() ? dirBytes(p) : fs.statSync(p).size;
  }
  return total;
}

async function appendEntries(dataDir: string, entries: number, keys: number, valueBytes: number, nodeId: number): Promise<number> {
  const storage = await DiskStorage.open({ dataDir });
  try {
    const { hardState } = storage.initialState();
    let index = storage.lastIndex();
    const term = hardState.term;
    const value = makeValue(valueBytes);
    const BATCH = 5000;
    for (let done = 0; done < entries; ) {
      const batch: Entry[] = [];
      for (let k = 0; k < BATCH && done < entries; k++, done++) {
        const data = encodeProposal({ origin: nodeId, epoch: 0, seq: done + 1 }, { op: Op.Put, key: `key-${done % keys}`, value });
        batch.push({ term, index: ++index, type: EntryType.Normal, data });
      }
      await storage.save({ entries: batch, hardState: { term, vote: hardState.vote, commit: index }, mustSync: false });
    }
    await storage.flush();
    return index;
  } finally {
    await storage.close();
  }
}

async function timeRestart(c: PgraftCluster, snapshot: boolean, limitMs: number): Promise<RestartRun> {
  const node = c.nodes[0];
  const t0 = performance.now();
  const proc = c.start(node);
  let apiMs = NaN;
  let appliedMs = NaN;
  let healthyMs = NaN;
  const deadline = t0 + limitMs;
  while (performance.now() < deadline) {
    if (!proc.running) throw new Error(`the agent exited while restarting:\n${proc.dump().slice(-3000)}`);
    if (Number.isNaN(appliedMs)) {
      const st = await jsonCall(node.apiPort, 'GET', '/v1/status', undefined, 60_000);
      if (st?.status === 200) {
        if (Number.isNaN(apiMs)) apiMs = performance.now() - t0;
        if (st.body.appliedIndex >= st.body.lastIndex && st.body.appliedIndex >= st.body.commitIndex) appliedMs = performance.now() - t0;
      }
    }
    if (!Number.isNaN(appliedMs)) {
      const h = await jsonCall(node.apiPort, 'GET', '/health', undefined, 60_000);
      if (h?.status === 200) {
        healthyMs = performance.now() - t0;
        break;
      }
    }
    await sleep(5);
  }
  if (Number.isNaN(healthyMs)) throw new Error(`the agent was not ready within ${limitMs} ms`);
  const rssMB = (readProc(proc.pid)?.rssBytes ?? NaN) / 2 ** 20;
  await c.stopAll();
  return { snapshot, apiMs, appliedMs, healthyMs, rssMB };
}

export async function runRestart(entries: number, runs: number, valueBytes: number, log: (s: string) => void): Promise<RestartResult> {
  const keys = Math.min(100_000, entries);
  const c = await PgraftCluster.create(1, { 'pgraft.snapshot_interval': '2147483647' });
  const node = c.nodes[0];
  try {
    await c.startAll();
    await c.stopAll();
    const w0 = performance.now();
    await appendEntries(node.dataDir, entries, keys, valueBytes, node.id);
    const writeMs = performance.now() - w0;
    const logBytes = dirBytes(node.dataDir);
    log(`  wrote ${entries} entries (${(logBytes / 2 ** 20).toFixed(0)} MB) in ${(writeMs / 1000).toFixed(1)} s`);
    const limitMs = 10 * 60_000;
    const out: RestartRun[] = [];
    const report = (r: RestartRun) =>
      log(`  restart ${r.snapshot ? 'with' : 'without'} snapshot: API ${r.apiMs.toFixed(0)} ms, applied ${r.appliedMs.toFixed(0)} ms, healthy ${r.healthyMs.toFixed(0)} ms, RSS ${r.rssMB.toFixed(0)} MB`);
    for (let i = 0; i < runs; i++) {
      out.push(await timeRestart(c, false, limitMs));
      report(out[out.length - 1]);
    }
    await c.startAll();
    const snap = await jsonCall(node.apiPort, 'POST', '/v1/snapshot', {}, 300_000);
    if (snap?.status !== 200) throw new Error(`POST /v1/snapshot answered ${snap?.status}: ${JSON.stringify(snap?.body)}`);
    await c.stopAll();
    const snapDir = path.join(node.dataDir, 'snapshots');
    const snapshotBytes = fs.existsSync(snapDir) ? dirBytes(snapDir) : NaN;
    for (let i = 0; i < runs; i++) {
      out.push(await timeRestart(c, true, limitMs));
      report(out[out.length - 1]);
    }
    return { entries, keys, valueBytes, writeMs, logBytes, snapshotBytes, runs: out };
  } finally {
    await c.stopAll();
    fs.rmSync(c.cluster.dir, { recursive: true, force: true });
  }
}
