import * as fs from 'node:fs';
import * as net from 'node:net';

/**
 * Loopback ports for the servers that tests (and the benchmark) start.
 *
 * A port that listen(0) handed out and that was then released can be taken by someone else
 * before the server meant for it binds: by any outbound connection, which draws its local port
 * from the same ephemeral range, or by another jest worker. The server then fails with
 * EADDRINUSE. So ports come from below the ephemeral range, each jest worker from a block of
 * its own, handed out in turn and each checked free by binding it first.
 */
const FIRST_PORT = 10_000;
const WORKER_BLOCKS = 16;

function ephemeralLow(): number {
  try {
    const low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > FIRST_PORT + WORKER_BLOCKS * 100) return low;
  } catch {
    // Not Linux: assume the IANA ephemeral range.
  }
  return 49_152;
}

const blockSize = Math.floor((ephemeralLow() - FIRST_PORT) / WORKER_BLOCKS);
const worker = (Number(process.env.JEST_WORKER_ID ?? '1') - 1) % WORKER_BLOCKS;
const blockStart = FIRST_PORT + worker * blockSize;
let next = 0;

/** Whether `port` can be bound on 127.0.0.1 now. */
export function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** `n` distinct free loopback ports from this process's block. */
export async function freePorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  for (let tried = 0; ports.length < n; tried++) {
    if (tried >= blockSize) throw new Error(`no ${n} free loopback ports left in ${blockStart}-${blockStart + blockSize - 1}`);
    const port = blockStart + (next++ % blockSize);
    if (await bindable(port)) ports.push(port);
  }
  return ports;
}
