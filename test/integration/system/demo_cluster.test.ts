/**
 * The README's first command: scripts/cluster starts a local three-node cluster with real
 * PostgreSQL; stop stops every process it started and keeps the data; start again resumes
 * it; clean removes everything. The demo listens on its fixed ports (PostgreSQL 5433-5435,
 * Raft 7001-7003, API 7011-7013, metrics 9100-9102), below the range the other tests draw
 * from; a demo already running on this machine makes the test fail at once.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import { REPO, cleanupAgents, tempDir } from '../../support/agents';
import { bindable } from '../../support/ports';

const SCRIPT = path.join(REPO, 'scripts', 'cluster');
const NODES = [1, 2, 3];
const dirs: string[] = [];

function cluster(command: 'start' | 'stop' | 'clean', dir: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    // Installing and building were done by scripts/test before the tests; doing them again
    // here would rewrite dist/ under the other tests' agents.
    const child = spawn('bash', [SCRIPT, command], {
      env: { ...process.env, PGRAFT_DEMO_DIR: dir, PGRAFT_DEMO_PREPARED: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`scripts/cluster ${command} did not finish within 120 s:\n${out}`));
    }, 120_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

function agentPids(dir: string): number[] {
  return NODES.map((i) => path.join(dir, `node${i}`, 'agent.pid'))
    .filter((f) => fs.existsSync(f))
    .map((f) => Number(fs.readFileSync(f, 'utf8').trim()));
}

/** Whether a process runs (a zombie, dead but not yet reaped, does not). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function sql(port: number, text: string, params: unknown[] = []): Promise<unknown> {
  const c = new Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await c.connect();
  try {
    return (await c.query(text, params)).rows[0];
  } finally {
    await c.end();
  }
}

/** Processes whose command line names `dir`: the demo's agents and postmasters. */
function processesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir) && running(Number(entry))) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

// Even when the script fails: clean, then kill whatever still runs from the demo's directory.
afterAll(async () => {
  for (const dir of dirs) {
    if (fs.existsSync(dir)) await cluster('clean', dir).catch(() => undefined);
    for (const pid of processesUnder(dir)) process.kill(pid, 'SIGKILL');
  }
  await cleanupAgents();
}, 150_000);

test('scripts/cluster: start, stop (nothing left running), start again (data kept), clean', async () => {
  for (const port of [5433, 7001, 7011, 9100]) {
    if (!(await bindable(port))) throw new Error(`port ${port} is in use: is a demo cluster running here? Stop it with scripts/cluster stop`);
  }
  const parent = tempDir('pgraft-demo-');
  fs.chmodSync(parent, 0o755); // run as root, the demo runs as postgres and must reach its directory
  const dir = path.join(parent, 'demo');
  dirs.push(dir);

  const up = await cluster('start', dir);
  expect({ code: up.code, out: up.out }).toMatchObject({ code: 0, out: expect.stringContaining('pgraft demo cluster is up') });
  const first = agentPids(dir);
  expect(first).toHaveLength(3);
  // Each pid file names the agent itself, which stop signals (not a shell around it).
  for (const pid of first) expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toMatch(/main\.js\0agent\0--config/);
  expect(await sql(5434, 'SELECT pgraft_kv_put($1, $2) AS ok', ['greeting', 'hello'])).toEqual({ ok: true });

  const down = await cluster('stop', dir);
  expect(down.code).toBe(0);
  expect(first.filter(running)).toEqual([]);
  for (const i of NODES) expect(fs.existsSync(path.join(dir, `node${i}`, 'pgdata', 'postmaster.pid'))).toBe(false);

  const again = await cluster('start', dir);
  expect(again.code).toBe(0);
  expect(await sql(5435, 'SELECT pgraft_kv_get($1) AS v', ['greeting'])).toEqual({ v: 'hello' });
  const second = agentPids(dir);

  const gone = await cluster('clean', dir);
  expect(gone.code).toBe(0);
  expect(fs.existsSync(dir)).toBe(false);
  expect(second.filter(running)).toEqual([]);
}, 300_000);
