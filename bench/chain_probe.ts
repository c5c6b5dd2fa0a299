/**
 * What a replicated write costs this machine before any consensus software runs: the c=1
 * round trip of a chain with pgraft's shape and nothing else.
 *
 * The load generator's PUT reaches a "leader" process (node:http), which sends the value over
 * TCP to two "follower" processes. Every process appends what it receives to a file of zeros
 * with one O_DSYNC write through libuv's thread pool, as the agents' logs do, writing what
 * queued meanwhile together. A follower reports the writes it has made durable; the leader
 * answers once two of the three copies are durable, its own among them or not. No Raft, no
 * encoding beyond a length prefix, no state machine, no metrics.
 *
 * The generator measures it exactly as it measures pgraft (bench/loadgen.ts). The difference
 * between pgraft's c=1 p50 and this one is what the agent's own work adds to a write; the
 * rest is the machine's: waking processes on other CPUs, and the disk.
 */
import { ChildProcess, fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { trackDir, trackPid, untrackPid } from './cleanup';
import { runLoad } from './loadgen';
import { round } from './stats';

export interface ChainProbe {
  p50Ms: number;
  p99Ms: number;
  opsPerSec: number;
}

export interface ChainProbeOptions {
  /** Unmeasured load first, as the systems get (run.ts --prewarm). */
  prewarmMs: number;
  prewarmConcurrency: number;
  durationMs: number;
  valueBytes: number;
}

/** Zeros written ahead, as the agents preallocate their log segments. */
const PREALLOCATE_BYTES = 32 << 20;
const CHILD_FLAG = '--chain-node';

type NodeSpec = { role: 'follower'; file: string } | { role: 'leader'; file: string; followers: number[] };

/**
 * Appends buffers to a preallocated file with O_DSYNC writes, one at a time; buffers that
 * arrive while a write is under way go together into the next (group commit).
 */
class DurableAppender {
  private readonly fd: number;
  private position = 0;
  private waiting: Buffer[] = [];
  private writing = false;
  durable = 0;

  constructor(
    file: string,
    private readonly onDurable: () => void,
  ) {
    fs.writeFileSync(file, Buffer.alloc(PREALLOCATE_BYTES));
    const fd = fs.openSync(file, 'r+');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    this.fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_DSYNC);
  }

  append(b: Buffer): void {
    this.waiting.push(b);
    this.next();
  }

  private next(): void {
    if (this.writing || this.waiting.length === 0) return;
    const count = this.waiting.length;
    const batch = count === 1 ? this.waiting[0] : Buffer.concat(this.waiting);
    this.waiting = [];
    this.writing = true;
    fs.write(this.fd, batch, 0, batch.length, this.position, (err) => {
      if (err) throw err;
      this.position += batch.length;
      this.durable += count;
      this.writing = false;
      this.onDurable();
      this.next();
    });
  }
}

/** Splits a byte stream into frames of a 4-byte big-endian length and that many bytes. */
export function frames(onFrame: (payload: Buffer) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  return (chunk) => {
    let buf = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
      const n = buf.readUInt32BE(0);
      onFrame(buf.subarray(4, 4 + n));
      buf = buf.subarray(4 + n);
    }
    pending = buf;
  };
}

export function frame(payload: Buffer): Buffer {
  const f = Buffer.allocUnsafe(4 + payload.length);
  f.writeUInt32BE(payload.length, 0);
  payload.copy(f, 4);
  return f;
}

/** A follower: appends each frame, and after each durable write sends how many it holds. */
function follower(spec: { file: string }, ready: (port: number) => void): void {
  let leaderSocket: net.Socket | null = null;
  const count = Buffer.alloc(4);
  const log = new DurableAppender(spec.file, () => {
    count.writeUInt32BE(log.durable, 0);
    leaderSocket?.write(frame(count));
  });
  const server = net.createServer((socket) => {
    leaderSocket = socket;
    socket.setNoDelay(true);
    socket.on('data', frames((payload) => log.append(payload)));
    socket.on('error', () => socket.destroy());
  });
  server.listen(0, '127.0.0.1', () => ready((server.address() as net.AddressInfo).port));
}

/** The leader: answers each PUT once two of the three copies of it are durable. */
async function leader(spec: { file: string; followers: number[] }, ready: (port: number) => void): Promise<void> {
  const acked = spec.followers.map(() => 0);
  const answers: http.ServerResponse[] = [];
  let answered = 0;
  const settle = () => {
    const copies = [log.durable, ...acked].sort((a, b) => b - a);
    const majority = copies[1];
    while (answered < majority) {
      const res = answers.shift()!;
      answered++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`{"index":${answered}}`);
    }
  };
  const log = new DurableAppender(spec.file, settle);
  const peers = await Promise.all(
    spec.followers.map(
      (port, i) =>
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1', () => resolve(s));
          s.setNoDelay(true);
          s.on('error', reject);
          s.on(
            'data',
            frames((payload) => {
              acked[i] = payload.readUInt32BE(0);
              settle();
            }),
          );
        }),
    ),
  );
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const value = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      const f = frame(value);
      for (const p of peers) p.write(f);
      answers.push(res);
      log.append(value);
    });
  });
  server.listen(0, '127.0.0.1', () => ready((server.address() as net.AddressInfo).port));
}

function startNode(spec: NodeSpec, kids: ChildProcess[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, [CHILD_FLAG], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    trackPid(child.pid);
    kids.push(child);
    child.once('message', (port) => resolve(port as number));
    child.once('exit', (code, signal) => reject(new Error(`reference chain ${spec.role} exited (code ${code}, signal ${signal})`)));
    child.send(spec);
  });
}

/** Measures the reference chain at c=1 with the benchmark's load generator. */
export async function runChainProbe(o: ChainProbeOptions): Promise<ChainProbe> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgraft-bench-chain-'));
  trackDir(dir);
  const kids: ChildProcess[] = [];
  try {
    const followers = [await startNode({ role: 'follower', file: path.join(dir, 'f1') }, kids), await startNode({ role: 'follower', file: path.join(dir, 'f2') }, kids)];
    const port = await startNode({ role: 'leader', file: path.join(dir, 'leader'), followers }, kids);
    const spec = { system: 'pgraft' as const, port, warmupMs: 0, valueBytes: o.valueBytes, keys: 1000, keyPrefix: 'chain-' };
    if (o.prewarmMs > 0) await runLoad({ ...spec, concurrency: o.prewarmConcurrency, durationMs: o.prewarmMs }, 1);
    const r = await runLoad({ ...spec, concurrency: 1, durationMs: o.durationMs }, 1);
    if (r.ops === 0) throw new Error(`the reference chain answered no write (statuses ${JSON.stringify(r.statuses)})`);
    return { p50Ms: round(r.latencyUs.p50 / 1000, 3), p99Ms: round(r.latencyUs.p99 / 1000, 3), opsPerSec: round(r.opsPerSec, 0) };
  } finally {
    for (const k of kids) {
      k.removeAllListeners('exit');
      k.kill('SIGKILL');
      untrackPid(k.pid);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module && process.argv.includes(CHILD_FLAG)) {
  process.once('message', (spec: NodeSpec) => {
    const ready = (port: number) => process.send!(port);
    if (spec.role === 'follower') follower(spec, ready);
    else void leader(spec, ready);
  });
}
