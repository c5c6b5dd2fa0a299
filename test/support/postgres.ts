/**
 * Throwaway PostgreSQL servers for tests: each in its own temporary directory (data and
 * unix socket), listening on 127.0.0.1 only, on a free port, with trust authentication
 * (loopback only, nothing else can reach it) except Debian's "local all postgres peer". PostgreSQL refuses to run as root, so when
 * the tests run as root every server command runs as the `postgres` user.
 *
 *   const pg = await TestPostgres.start();
 *   try { ... pg.conninfo() ... await pg.restart(); } finally { await pg.stop(); }
 *
 * stop() kills the server (pg_ctl stop -m immediate) and removes its files; servers still
 * running when the process exits (a test that failed before its cleanup) are stopped too.
 */
import { execFile, execFileSync, spawnSync } from 'child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, appendFileSync, writeFileSync, chownSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Client, ClientConfig } from 'pg';
import { promisify } from 'util';
import { freePorts } from './ports';

const run = promisify(execFile);
const REPO = path.resolve(__dirname, '..', '..');

export interface StartOptions {
  /** Lines appended to postgresql.conf (e.g. "pgraft.node_id = 1"). */
  conf?: string[];
  /** Start as a hot standby of this server (pg_basebackup -R), streaming from it. */
  standbyOf?: TestPostgres;
}

export class TestPostgres {
  private static readonly running = new Set<TestPostgres>();
  private stopped = false;

  private constructor(
    readonly binDir: string,
    /** Temporary directory holding everything of this server. */
    readonly dir: string,
    readonly port: number,
  ) {}

  get dataDir(): string {
    return path.join(this.dir, 'data');
  }

  get socketDir(): string {
    return path.join(this.dir, 'socket');
  }

  /** Start a new server (PostgreSQL 15 by default; PGRAFT_PG_BINDIR picks another). */
  static async start(options: StartOptions = {}): Promise<TestPostgres> {
    const binDir = postgresBinDir();
    for (let attempt = 1; ; attempt++) {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'pgraft-pg-'));
      const server = new TestPostgres(binDir, dir, (await freePorts(1))[0]);
      TestPostgres.running.add(server);
      try {
        await server.create(options);
        await server.ctl('start', '-w', '-t', '60', '-l', path.join(dir, 'server.log'));
        return server;
      } catch (err) {
        const portTaken = server.log().includes('could not bind');
        await server.stop();
        if (!portTaken || attempt === 3) throw err;
      }
    }
  }

  /** libpq conninfo over TCP (what the agent's pgraft.pg_conninfo would hold). */
  conninfo(user = 'postgres', database = 'postgres'): string {
    return `host=127.0.0.1 port=${this.port} user=${user} dbname=${database}`;
  }

  clientConfig(user = 'postgres', database = 'postgres'): ClientConfig {
    return { host: '127.0.0.1', port: this.port, user, database };
  }

  /** A connected client; the caller ends it. */
  async connect(user = 'postgres', database = 'postgres'): Promise<Client> {
    const client = new Client(this.clientConfig(user, database));
    client.on('error', () => undefined); // connections die on restart(); the test sees it in its queries
    await client.connect();
    return client;
  }

  /** Restart the server; every connection is cut ('fast') or the server crashes ('immediate'). */
  async restart(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await this.ctl('restart', '-m', mode, '-w', '-t', '60', '-l', path.join(this.dir, 'server.log'));
  }

  /** A hot standby leaves recovery and accepts writes (pg_ctl promote). */
  async promote(): Promise<void> {
    await this.ctl('promote', '-w', '-t', '60');
  }

  /** Kill the server and remove its files. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    TestPostgres.running.delete(this);
    if (existsSync(path.join(this.dataDir, 'postmaster.pid'))) {
      await this.ctl('stop', '-m', 'immediate', '-w').catch(() => undefined);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The server's log so far (for failure messages). */
  log(): string {
    const file = path.join(this.dir, 'server.log');
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  }

  private async create(options: StartOptions): Promise<void> {
    const owner = serverUser();
    if (owner) chownSync(this.dir, owner.uid, owner.gid);
    await this.asServerUser('mkdir', ['-m', '0700', this.socketDir]);
    if (options.standbyOf) {
      const primary = options.standbyOf;
      await this.asServerUser(path.join(this.binDir, 'pg_basebackup'), [
        '-h', primary.socketDir, '-p', String(primary.port), '-U', 'postgres',
        '-D', this.dataDir, '-R', '-X', 'stream', '-c', 'fast', '--no-sync',
      ]);
      // Its status file is the primary's; the standby's own agent writes its own.
      rmSync(path.join(this.dataDir, 'pgraft'), { recursive: true, force: true });
    } else {
      await this.asServerUser(path.join(this.binDir, 'initdb'), [
        '-D', this.dataDir, '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C',
      ]);
      writeFileSync(
        path.join(this.dataDir, 'pg_hba.conf'),
        [
          // As Debian sets it up: the server's own OS user is the database superuser.
          ...(serverUser() ? ['local all postgres peer'] : []),
          'local all all trust',
          'host all all 127.0.0.1/32 trust',
          'local replication all trust',
          'host replication all 127.0.0.1/32 trust',
          '',
        ].join('\n'),
      );
    }
    appendFileSync(
      path.join(this.dataDir, 'postgresql.conf'),
      [
        '',
        "listen_addresses = '127.0.0.1'",
        `port = ${this.port}`,
        `unix_socket_directories = '${this.socketDir}'`,
        'fsync = off',
        'full_page_writes = off',
        'shared_buffers = 16MB',
        'max_connections = 50',
        'log_min_messages = warning',
        // As the operator documents' production configuration has it: proves the library loads.
        "shared_preload_libraries = 'pgraft'",
        ...(options.conf ?? []),
        '',
      ].join('\n'),
    );
  }

  private async ctl(...args: string[]): Promise<void> {
    try {
      await this.asServerUser(path.join(this.binDir, 'pg_ctl'), ['-D', this.dataDir, ...args]);
    } catch (err) {
      throw new Error(`pg_ctl ${args[0]} failed: ${(err as Error).message}\n--- server log ---\n${this.log().slice(-4000)}`);
    }
  }

  private async asServerUser(command: string, args: string[]): Promise<void> {
    const [cmd, argv] = serverUser() ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
    await run(cmd, argv, { cwd: this.dir, timeout: 120_000 });
  }

  /** Stop whatever a failed test left running; called when the process exits. */
  static stopAllSync(): void {
    for (const server of TestPostgres.running) {
      TestPostgres.running.delete(server);
      const ctl = path.join(server.binDir, 'pg_ctl');
      const argv = ['-D', server.dataDir, 'stop', '-m', 'immediate', '-w'];
      spawnSync(serverUser() ? 'runuser' : ctl, serverUser() ? ['-u', 'postgres', '--', ctl, ...argv] : argv);
      rmSync(server.dir, { recursive: true, force: true });
    }
  }
}

process.on('exit', () => TestPostgres.stopAllSync());
// Killed from outside (Ctrl-C, a timeout): clean up, then die of the same signal.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    TestPostgres.stopAllSync();
    process.kill(process.pid, signal);
  });
}

/**
 * The server binaries: $PGRAFT_PG_BINDIR, else PostgreSQL 15 (or the newest installed)
 * under /usr/lib/postgresql, installing Debian's package first when none is there.
 */
export function postgresBinDir(): string {
  if (process.env.PGRAFT_PG_BINDIR) return process.env.PGRAFT_PG_BINDIR;
  const installed = () =>
    existsSync('/usr/lib/postgresql')
      ? readdirSync('/usr/lib/postgresql')
          .filter((v) => existsSync(`/usr/lib/postgresql/${v}/bin/postgres`))
          .sort((a, b) => Number(a) - Number(b))
      : [];
  let versions = installed();
  if (versions.length === 0) {
    execFileSync(path.join(REPO, 'scripts', 'ensure-postgres'), { stdio: 'inherit', timeout: 600_000 });
    versions = installed();
  }
  const version = versions.includes('15') ? '15' : versions[versions.length - 1];
  if (!version) throw new Error('no PostgreSQL server under /usr/lib/postgresql; run scripts/ensure-postgres');
  return `/usr/lib/postgresql/${version}/bin`;
}

let postgresUser: { uid: number; gid: number } | null | undefined;

/** The unprivileged user that runs the server when the tests run as root. */
function serverUser(): { uid: number; gid: number } | null {
  if (postgresUser === undefined) {
    postgresUser =
      process.getuid?.() === 0
        ? {
            uid: Number(execFileSync('id', ['-u', 'postgres']).toString()),
            gid: Number(execFileSync('id', ['-g', 'postgres']).toString()),
          }
        : null;
  }
  return postgresUser;
}

