/**
 * Real pgraft agents on 127.0.0.1 for integration tests: each node gets a configuration file
 * (postgresql.conf syntax) and a data directory in one temporary directory, free ports, and
 * a process started through the CLI (`node dist/agent/cli/main.js agent ...`) whose JSON log
 * lines are kept for assertions. `cleanupAgents()` (call it in afterEach) kills every process
 * started here and removes every directory, whatever the test did.
 *
 * The tests run the built dist/ (scripts/test builds before jest).
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePorts } from './ports';

export const REPO = path.resolve(__dirname, '..', '..');
export const CLI = path.join(REPO, 'dist', 'agent', 'cli', 'main.js');

/** Timing that keeps the suite fast: elections within about a second. */
export const ELECTION_TIMEOUT_MS = 500;
export const HEARTBEAT_MS = 50;

export interface LogLine {
  level: number;
  time: number;
  msg: string;
  [field: string]: unknown;
}

export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;

const live = new Set<AgentProcess>();
const writers = new Set<Writer>();
const dirs = new Set<string>();

/** Thrown inside a waitFor condition: the wait cannot succeed any more, fail at once. */
export class FatalWait extends Error {}

/** Polls `f` until it returns a truthy value; fails with `what` when the deadline passes. */
export async function waitFor<T>(what: string, f: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs = 10_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) {
      if (e instanceof FatalWait) throw e;
      lastError = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export { freePorts };

export function tempDir(prefix = 'pgraft-it-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.add(d);
  return d;
}

/** The environment of a child: this one without PGDATA and PGRAFT_* (a test sets what it means). */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (k !== 'PGDATA' && !k.startsWith('PGRAFT_')) env[k] = v;
  return { ...env, ...extra };
}

export function assertBuilt(): void {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npx tsc -p tsconfig.json; scripts/test does it)`);
}

/** One agent process. */
export class AgentProcess {
  readonly lines: LogLine[] = [];
  /** stdout lines that are not JSON, and everything on stderr. */
  readonly other: string[] = [];
  stderr = '';
  private exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  constructor(
    readonly node: TestNode,
    readonly child: ChildProcess,
  ) {
    live.add(this);
    let buf = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          this.other.push(line);
        }
      }
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exit = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exited = { code, signal };
        live.delete(this);
        resolve({ code, signal });
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.exited === null;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  waitExit(timeoutMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return Promise.race([
      this.exit,
      new Promise<never>((_, reject) => {
        const t = setTimeout(() => reject(new Error(`node ${this.node.id} did not exit within ${timeoutMs} ms`)), timeoutMs);
        t.unref();
      }),
    ]);
  }

  /** Lines logged so far that match. */
  find(pred: (l: LogLine) => boolean): LogLine[] {
    return this.lines.filter(pred);
  }

  async waitForLog(what: string, pred: (l: LogLine) => boolean, timeoutMs = 10_000, from = 0): Promise<LogLine> {
    try {
      return await waitFor(`node ${this.node.id} to log ${what}`, () => this.lines.slice(from).find(pred), timeoutMs);
    } catch (e) {
      // What the node did instead is what a failure report needs.
      const tail = [...this.lines.slice(-40).map((l) => JSON.stringify(l)), ...this.other.slice(-10), this.stderr.slice(-2000)];
      throw new Error(`${(e as Error).message}; its last output:\n${tail.join('\n')}`);
    }
  }

  /** All output, for failure messages. */
  dump(): string {
    return [...this.lines.map((l) => JSON.stringify(l)), ...this.other, this.stderr].join('\n');
  }
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string;
}

/** One HTTP call to 127.0.0.1:port; over HTTPS, trusting only `ca`, when it is given. */
export async function http(
  port: number,
  method: string,
  pathname: string,
  body?: unknown,
  headers: Record<string, string> = {},
  timeoutMs = 10_000,
  ca?: Buffer,
): Promise<HttpAnswer> {
  const payload = body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  if (ca) return httpsCall(port, method, pathname, payload, headers, timeoutMs, ca);
  const res = await fetch(`http://127.0.0.1:${port}${pathname}`, {
    method,
    body: payload,
    headers,
    signal: AbortSignal.timeout(timeoutMs),
  });
  return answer(res.status, Object.fromEntries(res.headers.entries()), await res.text());
}

function answer(status: number, headers: HttpAnswer['headers'], text: string): HttpAnswer {
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = null;
  }
  return { status, headers, body: parsed, text };
}

function httpsCall(port: number, method: string, pathname: string, payload: string | Buffer | undefined, headers: Record<string, string>, timeoutMs: number, ca: Buffer): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, method, path: pathname, headers, ca, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve(answer(res.statusCode ?? 0, res.headers, Buffer.concat(chunks).toString('utf8'))));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** A node's files and ports; its process when started. */
export class TestNode {
  proc: AgentProcess | null = null;
  /** Stopped with SIGSTOP: the process runs but answers nothing. */
  paused = false;
  /** Every process this node ran, oldest first. */
  readonly runs: AgentProcess[] = [];
  readonly configFile: string;
  readonly dataDir: string;
  /** Set when the node serves its API over HTTPS (pgraft.api_tls): the CA the helpers trust. */
  apiCa: Buffer | undefined;
  /** The pgraft command start() runs: this checkout's build, or another build (an upgrade). */
  cli = CLI;

  constructor(
    readonly cluster: TestCluster,
    readonly id: number,
    readonly raftPort: number,
    readonly apiPort: number,
    readonly metricsPort: number,
    public settings: Record<string, string>,
  ) {
    const home = path.join(cluster.dir, `n${id}`);
    fs.mkdirSync(home, { recursive: true });
    this.configFile = path.join(home, 'postgresql.conf');
    this.dataDir = path.join(home, 'data');
    this.writeConfig();
  }

  get raftAddress(): string {
    return `127.0.0.1:${this.raftPort}`;
  }

  get apiAddress(): string {
    return `127.0.0.1:${this.apiPort}`;
  }

  writeConfig(): void {
    const lines = Object.entries({
      'pgraft.cluster_id': `'${this.cluster.clusterId}'`,
      'pgraft.node_id': String(this.id),
      'pgraft.address': "'127.0.0.1'",
      'pgraft.port': String(this.raftPort),
      'pgraft.api_port': String(this.apiPort),
      'pgraft.metrics_enabled': 'on',
      'pgraft.metrics_port': String(this.metricsPort),
      'pgraft.data_dir': `'${this.dataDir}'`,
      'pgraft.election_timeout': `${ELECTION_TIMEOUT_MS}ms`,
      'pgraft.heartbeat_interval': `${HEARTBEAT_MS}ms`,
      'pgraft.rpc_timeout': '3s',
      'pgraft.log_level': 'info',
      'pgraft.pg_conninfo': "''", // these tests run agents without PostgreSQL
      ...this.settings,
    }).map(([k, v]) => `${k} = ${v}`);
    fs.writeFileSync(this.configFile, `# written by test/support/agents.ts\n${lines.join('\n')}\n`);
  }

  /** Starts `pgraft agent --config FILE ...extra`. */
  start(extra: string[] = [], env: Record<string, string> = {}): AgentProcess {
    assertBuilt();
    if (this.proc?.running) throw new Error(`node ${this.id} is already running`);
    const child = spawn(process.execPath, [this.cli, 'agent', '--config', this.configFile, ...extra], {
      env: childEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = new AgentProcess(this, child);
    this.runs.push(this.proc);
    return this.proc;
  }

  /** The running process; fails the test if there is none. */
  get p(): AgentProcess {
    if (!this.proc) throw new Error(`node ${this.id} was never started`);
    return this.proc;
  }

  /** SIGTERM, and waits for a clean exit. */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const p = this.p;
    p.signal('SIGTERM');
    return p.waitExit();
  }

  /** SIGSTOP: the process freezes with its connections open, as a stalled machine would. */
  pause(): void {
    this.p.signal('SIGSTOP');
    this.paused = true;
  }

  resume(): void {
    this.p.signal('SIGCONT');
    this.paused = false;
  }

  /** kill -9, and waits for the process to be gone. */
  async kill9(): Promise<void> {
    const p = this.p;
    p.signal('SIGKILL');
    await p.waitExit();
  }

  api(method: string, pathname: string, body?: unknown, headers: Record<string, string> = {}, timeoutMs?: number): Promise<HttpAnswer> {
    return http(this.apiPort, method, pathname, body, headers, timeoutMs, this.apiCa);
  }

  async status(): Promise<StatusBody> {
    const a = await this.api('GET', '/v1/status', undefined, {}, 2000);
    if (a.status !== 200) throw new Error(`node ${this.id}: GET /v1/status answered ${a.status}: ${a.text}`);
    return a.body as StatusBody;
  }
}

export interface StatusBody {
  nodeId: number;
  role: string;
  term: number;
  leaderId: number | null;
  leaderApi: string | null;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
  firstIndex: number;
  state: string;
  version: string;
  startedAt: string;
  members: { id: number; raftAddress: string; apiAddress: string; role: string; leader: boolean; matchIndex: number | null; lag: number | null; lastContactMs: number | null }[];
}

export interface ClusterOptions {
  /** Founding members (ids 1..size), bootstrapped from pgraft.initial_cluster. */
  size: number;
  /** Extra nodes prepared (configuration written, not started, not in initial_cluster). */
  spare?: number;
  /** Settings for every node, written as given (`'pgraft.snapshot_interval': '20'`). */
  settings?: Record<string, string>;
}

/** A set of nodes sharing one temporary directory. */
export class TestCluster {
  readonly dir = tempDir();
  readonly clusterId = `it-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
  readonly nodes = new Map<number, TestNode>();

  private constructor() {}

  static async create(o: ClusterOptions): Promise<TestCluster> {
    const c = new TestCluster();
    const total = o.size + (o.spare ?? 0);
    const ports = await freePorts(total * 3);
    const founding = Array.from({ length: o.size }, (_, i) => `${i + 1}=127.0.0.1:${ports[i * 3]}`).join(',');
    for (let i = 0; i < total; i++) {
      const id = i + 1;
      const settings = { ...(o.settings ?? {}) };
      if (id <= o.size) settings['pgraft.initial_cluster'] = `'${founding}'`;
      c.nodes.set(id, new TestNode(c, id, ports[i * 3], ports[i * 3 + 1], ports[i * 3 + 2], settings));
    }
    return c;
  }

  node(id: number): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id} in this cluster`);
    return n;
  }

  /** Nodes whose process is running (and not paused). */
  running(): TestNode[] {
    return [...this.nodes.values()].filter((n) => n.proc?.running && !n.paused);
  }

  /** Starts the founding members (those with initial_cluster). */
  startFounders(): TestNode[] {
    const founders = [...this.nodes.values()].filter((n) => n.settings['pgraft.initial_cluster'] !== undefined);
    for (const n of founders) n.start();
    return founders;
  }

  /**
   * Waits until every node in `among` (default: all running) names the same leader in the
   * same term and that leader says it leads; returns it.
   */
  async waitLeader(among?: TestNode[], timeoutMs = 15_000): Promise<TestNode> {
    return waitFor(
      'one leader agreed on by the running nodes',
      async () => {
        const nodes = among ?? this.running();
        const dead = nodes.filter((n) => !n.proc?.running);
        if (nodes.length === 0 || dead.length > 0) {
          const gone = [...this.nodes.values()].filter((n) => n.proc && !n.proc.running);
          throw new FatalWait(`no leader can be agreed on: ${gone.map((n) => `node ${n.id} exited (${JSON.stringify(n.proc!.exited)}):\n${n.proc!.dump()}`).join('\n')}`);
        }
        const st = await Promise.all(nodes.map((n) => n.status().catch(() => null)));
        if (st.some((s) => s === null)) return null;
        const lead = st[0]!.leaderId;
        if (lead === null || !st.every((s) => s!.leaderId === lead && s!.term === st[0]!.term)) return null;
        const leader = this.nodes.get(lead);
        if (!leader?.proc?.running) return null;
        const ls = await leader.status().catch(() => null);
        return ls?.role === 'leader' ? leader : null;
      },
      timeoutMs,
      25,
    );
  }

  /** Waits until every node in `among` has applied at least `index`. */
  async waitApplied(index: number, among?: TestNode[], timeoutMs = 15_000): Promise<void> {
    await waitFor(
      `nodes ${(among ?? this.running()).map((n) => n.id).join(', ')} to apply index ${index}`,
      async () => {
        const st = await Promise.all((among ?? this.running()).map((n) => n.status().catch(() => null)));
        return st.every((s) => s !== null && s.appliedIndex >= index);
      },
      timeoutMs,
    );
  }
}

/** Writes `count` keys through `via` (any node: followers forward); returns the keys acknowledged. */
export async function putMany(via: TestNode, prefix: string, count: number): Promise<string[]> {
  const acked: string[] = [];
  for (let i = 0; i < count; i++) {
    const key = `${prefix}${i}`;
    const a = await via.api('PUT', `/v1/kv/${key}`, `value-${key}`);
    if (a.status !== 200) throw new Error(`PUT ${key} via node ${via.id} answered ${a.status}: ${a.text}`);
    acked.push(key);
  }
  return acked;
}

/**
 * Writes keys in a loop through whichever running node answers, until stopped; records the
 * keys whose write was acknowledged (HTTP 200). Failures are expected while nodes come and go.
 */
export class Writer {
  readonly acked: string[] = [];
  failures = 0;
  private stopped = false;
  private loop: Promise<void>;

  constructor(
    private readonly cluster: TestCluster,
    private readonly prefix: string,
  ) {
    this.loop = this.run();
    writers.add(this);
  }

  private async run(): Promise<void> {
    let i = 0;
    let turn = 0;
    while (!this.stopped) {
      const nodes = this.cluster.running();
      if (nodes.length === 0) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      const n = nodes[turn++ % nodes.length];
      const key = `${this.prefix}${i}`;
      try {
        const a = await n.api('PUT', `/v1/kv/${key}`, `value-${key}`, {}, 2000);
        if (a.status === 200) {
          this.acked.push(key);
          i++;
        } else {
          this.failures++;
          await new Promise((r) => setTimeout(r, 20));
        }
      } catch {
        this.failures++;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  async stop(): Promise<string[]> {
    this.stopped = true;
    writers.delete(this);
    await this.loop;
    return this.acked;
  }
}

/** Every acknowledged key reads back with its value (linearizable read through `via`). */
export async function expectAllReadable(via: TestNode, keys: string[], consistency: 'linearizable' | 'stale' = 'linearizable'): Promise<void> {
  const missing: string[] = [];
  for (const key of keys) {
    const a = await via.api('GET', `/v1/kv/${key}?consistency=${consistency}`);
    if (a.status !== 200 || a.body?.value !== `value-${key}`) missing.push(`${key} (${a.status})`);
  }
  if (missing.length > 0) throw new Error(`node ${via.id}: ${missing.length} of ${keys.length} acknowledged keys unreadable: ${missing.slice(0, 10).join(', ')}`);
}

/** Runs the CLI to completion (a control command); its exit code and output. */
export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  assertBuilt();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pgraft ${args.join(' ')} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Stops every Writer, kills every agent process started here (SIGCONT first, for a stopped one) and removes every directory. */
export async function cleanupAgents(): Promise<void> {
  await Promise.all([...writers].map((w) => w.stop()));
  const procs = [...live];
  for (const p of procs) {
    try {
      process.kill(p.pid, 'SIGCONT');
    } catch {
      // already gone
    }
    p.signal('SIGKILL');
  }
  await Promise.all(procs.map((p) => p.waitExit(5000).catch(() => undefined)));
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  dirs.clear();
}

// A test run that dies (or a worker that is torn down) must not leave agents behind.
process.once('exit', () => {
  for (const p of live) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});
