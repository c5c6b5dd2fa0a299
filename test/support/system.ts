/**
 * Whole pgraft nodes for end-to-end tests of the SQL surface: each node is one throwaway
 * PostgreSQL (./postgres.ts) and one agent process started through the CLI (./agents.ts)
 * whose pgraft.pg_conninfo points at that server, everything on 127.0.0.1. The agent
 * installs the extension into its server and answers the SQL functions' requests; the
 * tests speak SQL to the servers only.
 *
 *   const sys = await TestSystem.create({ size: 3 });
 *   sys.startFounders();
 *   const leader = await sys.waitLeader();
 *   ... await leader.value('SELECT pgraft_kv_put($1, $2)', ['k', 'v']) ...
 *   await cleanupSystems(); // afterAll: sessions, agents, servers, files
 *
 * The tests run the built dist/ agent (npx tsc -p tsconfig.json).
 */
import * as path from 'path';
import type { Client, QueryResult } from 'pg';
import { installExtensionFiles } from '../../agent/postgres/install';
import { TestCluster, TestNode, cleanupAgents, waitFor } from './agents';
import { TestPostgres, postgresBinDir } from './postgres';

export interface SystemOptions {
  /** Founding members, ids 1..size (pgraft.initial_cluster). */
  size: number;
  /** Further nodes: an empty raft data directory, no bootstrap, agent not started. */
  spare?: number;
  /** pgraft.rpc_timeout, for the agents and for SQL alike (default 5 s, pgraft's default). */
  rpcTimeoutMs?: number;
}

const systems = new Set<TestSystem>();
/** Creations under way: a test that timed out may leave one running into the cleanup. */
const creating = new Set<Promise<unknown>>();
let extensionFiles: Promise<string> | null = null;

/** One PostgreSQL and the agent beside it. */
export class SystemNode {
  private session: Client | null = null;
  private readonly clients = new Set<Client>();

  constructor(
    readonly id: number,
    readonly pg: TestPostgres,
    readonly agent: TestNode,
  ) {}

  get raftPort(): number {
    return this.agent.raftPort;
  }

  get agentRunning(): boolean {
    return this.agent.proc?.running === true;
  }

  /** Starts the agent (`pgraft agent --config FILE`). */
  startAgent(): void {
    this.agent.start();
  }

  /** A new session as `user`; ended by close() if the test does not. */
  async connect(user = 'postgres'): Promise<Client> {
    const client = await this.pg.connect(user);
    this.clients.add(client);
    client.on('end', () => {
      this.clients.delete(client);
      if (this.session === client) this.session = null;
    });
    return client;
  }

  /** A statement in this node's superuser session (the operator's psql), reopened after a restart. */
  async query(text: string, params?: unknown[]): Promise<QueryResult> {
    this.session ??= await this.connect();
    return this.session.query(text, params);
  }

  /** The one value of a one-row, one-column statement. */
  async value<T = unknown>(text: string, params?: unknown[]): Promise<T> {
    const { rows } = await this.query(text, params);
    if (rows.length !== 1) throw new Error(`node ${this.id}: "${text}" gave ${rows.length} rows, not 1`);
    return Object.values(rows[0])[0] as T;
  }

  /** pg_ctl restart under the running agent; this node's sessions are cut. */
  async restartPostgres(mode: 'fast' | 'immediate'): Promise<void> {
    await this.endSessions();
    await this.pg.restart(mode);
  }

  async endSessions(): Promise<void> {
    this.session = null;
    await Promise.all([...this.clients].map((c) => c.end().catch(() => undefined)));
    this.clients.clear();
  }

  /** Server log and agent output, for failure messages. */
  dump(): string {
    return `--- node ${this.id} agent ---\n${this.agent.proc?.dump() ?? '(never started)'}\n--- node ${this.id} PostgreSQL ---\n${this.pg.log().slice(-3000)}`;
  }
}

/** Nodes of one cluster: ids 1..size founding, then the spare ones. */
export class TestSystem {
  readonly nodes = new Map<number, SystemNode>();

  private constructor(readonly cluster: TestCluster) {}

  static async create(o: SystemOptions): Promise<TestSystem> {
    const rpcTimeout = `${o.rpcTimeoutMs ?? 5000}ms`;
    const cluster = await TestCluster.create({ size: o.size, spare: o.spare, settings: { 'pgraft.rpc_timeout': rpcTimeout } });
    const sys = new TestSystem(cluster);
    systems.add(sys);
    const starting = Promise.allSettled(
      [...cluster.nodes.keys()].map(async (id) => {
        // Once per process: sql/ and migrations/ into the servers' extension folder.
        extensionFiles ??= installExtensionFiles(path.join(postgresBinDir(), 'pg_config'));
        // SQL reads pgraft.node_id until the agent has published, and rpc_timeout always.
        const pg = await TestPostgres.start({ conf: [`pgraft.node_id = ${id}`, `pgraft.rpc_timeout = '${rpcTimeout}'`] });
        const agent = cluster.node(id);
        sys.nodes.set(id, new SystemNode(id, pg, agent)); // from here on, cleanupSystems() stops it
        agent.settings['pgraft.pg_conninfo'] = `'${pg.conninfo()}'`;
        agent.writeConfig();
        await extensionFiles;
      }),
    );
    creating.add(starting);
    const started = await starting.finally(() => creating.delete(starting));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    return sys;
  }

  node(id: number): SystemNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id} in this system`);
    return n;
  }

  /** The founding members, ids 1..size. */
  founders(): SystemNode[] {
    return [...this.nodes.values()].filter((n) => n.agent.settings['pgraft.initial_cluster'] !== undefined);
  }

  startFounders(): void {
    for (const n of this.founders()) n.startAgent();
  }

  /** Starts every founder whose agent is not running (after a kill or a stop). */
  restartStoppedFounders(): void {
    for (const n of this.founders()) if (!n.agentRunning) n.startAgent();
  }

  /**
   * Waits until SQL on every node of `among` (default: the founders) shows the agent
   * RUNNING and the same leader, one of them, which itself says it leads; returns it.
   */
  async waitLeader(among: SystemNode[] = this.founders(), timeoutMs = 20_000): Promise<SystemNode> {
    try {
      return await waitFor(
        `one leader shown by SQL on nodes ${among.map((n) => n.id).join(', ')}`,
        async () => {
          const views = await Promise.all(
            among.map(async (n) => (await n.query('SELECT pgraft_get_worker_state() AS worker, pgraft_get_leader() AS leader')).rows[0]),
          );
          const leader = Number(views[0].leader);
          if (leader === 0 || !views.every((v) => v.worker === 'RUNNING' && Number(v.leader) === leader)) return null;
          const node = among.find((n) => n.id === leader);
          return node && (await node.value<boolean>('SELECT pgraft_is_leader()')) ? node : null;
        },
        timeoutMs,
        50,
      );
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${among.map((n) => n.dump()).join('\n')}`);
    }
  }
}

/** Ends every session, kills every agent, stops every server and removes every file. */
export async function cleanupSystems(): Promise<void> {
  await Promise.all([...creating]);
  const all = [...systems];
  systems.clear();
  const nodes = all.flatMap((s) => [...s.nodes.values()]);
  await Promise.all(nodes.map((n) => n.endSessions()));
  await cleanupAgents();
  await Promise.all(nodes.map((n) => n.pg.stop()));
}

/**
 * Retries `check` (assertions that throw) until it passes; after `timeoutMs` the last
 * failure is the test's.
 */
export async function eventually(check: () => Promise<void>, timeoutMs = 5000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Polls `f` until it returns a truthy value that was observed no later than `deadline`
 * (epoch ms); fails once the deadline has passed.
 */
export async function before<T>(what: string, deadline: number, f: () => Promise<T | null | undefined | false>, everyMs = 20): Promise<T> {
  let last: unknown = null;
  for (;;) {
    let v: T | null | undefined | false = null;
    try {
      v = await f();
    } catch (e) {
      last = e;
    }
    const now = Date.now();
    if (v && now <= deadline) return v;
    if (now > deadline) {
      throw new Error(`${what}: not by the deadline (${now - deadline} ms past it)${last ? `; last error: ${(last as Error).message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Resolves or rejects as `p` does, or fails if `p` is still pending at `deadline` (epoch ms). */
export async function settledBy<T>(what: string, deadline: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still running at the deadline`)), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}
