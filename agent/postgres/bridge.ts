/**
 * The agent's side of the SQL control surface, against the local PostgreSQL:
 *
 * - on start, installs or upgrades the pgraft extension (CREATE EXTENSION IF NOT EXISTS,
 *   ALTER EXTENSION UPDATE) unless the server is a hot standby;
 * - LISTENs on the request channel and answers requests (see sql/pgraft--1.0.sql for the
 *   protocol): a notification only says "look"; the agent claims the pending rows of
 *   pgraft.request, which only privileged roles can have written, so a hand-made NOTIFY
 *   makes it act on nothing. After PostgreSQL restarts, the listener reconnects and the
 *   rows that arrived meanwhile are claimed;
 * - publishes the state file the status functions read, every publishIntervalMs and on
 *   statusChanged(), and a final STOPPING/STOPPED on stop().
 */
import pino, { Logger } from 'pino';
import type { ControlPlane, StatusSnapshot, WorkerState } from './control';
import { parseConninfo } from './conninfo';
import { dispatch } from './dispatch';
import { Client, ClientConfig, Subscriber, createSubscriber } from './pg_driver';
import { writeStatusFile } from './status_file';

/** The channel pgraft._call notifies (sql/pgraft--1.0.sql). */
export const RPC_CHANNEL = 'pgraft_rpc';

export interface BridgeOptions {
  /** libpq conninfo of the local PostgreSQL (pgraft.pg_conninfo); the role must be a superuser. */
  conninfo: string;
  control: ControlPlane;
  /** The agent's current state, read at every publish. */
  status: () => StatusSnapshot;
  /** How often the state file is rewritten; well below pgraft.status_timeout (1500ms). */
  publishIntervalMs?: number;
  /** Create or upgrade the extension on start (default true). */
  installExtension?: boolean;
  logger?: Logger;
}

/** How often a bridge on a hot standby checks whether it was promoted. */
const PROMOTION_CHECK_MS = 1000;
/** How soon claiming requests is tried again after it failed (e.g. PostgreSQL restarting). */
const DRAIN_RETRY_MS = 250;
/** SQLSTATE of a function or procedure that does not exist. */
const UNDEFINED_FUNCTION = '42883';
/** How long stop() lets requests in progress finish before it closes the connection. */
const STOP_GRACE_MS = 1000;

export class PostgresBridge {
  private readonly config: ClientConfig;
  private readonly log: Logger;
  private readonly publishIntervalMs: number;
  private readonly db: Session;
  private listener: Subscriber | null = null;
  private dataDirectory = '';
  private database = '';
  private publishTimer: NodeJS.Timeout | null = null;
  private promotionTimer: NodeJS.Timeout | null = null;
  private publishing: Promise<void> = Promise.resolve();
  private publishQueued = false;
  private finalState: WorkerState | null = null;
  private stopping = false;
  private draining = false;
  /** The installed extension has pgraft._answer (1.2); cleared when a call finds it missing. */
  private answerInOneCall = true;
  private drainAgain = false;
  private claimFailing = false;
  private publishFailing = false;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly options: BridgeOptions) {
    this.config = { ...parseConninfo(options.conninfo), application_name: 'pgraft agent' };
    this.log = options.logger ?? pino({ enabled: false });
    this.publishIntervalMs = options.publishIntervalMs ?? 250;
    this.db = new Session(this.config, this.log);
  }

  /** Connect, install the extension, start publishing and serving requests. */
  async start(): Promise<void> {
    try {
      let facts;
      try {
        facts = (
          await this.db.query(
            `SELECT current_database() AS database, pg_is_in_recovery() AS standby,
                    (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser`,
          )
        ).rows[0];
      } catch (err) {
        throw new Error(`pgraft agent: cannot reach PostgreSQL through pgraft.pg_conninfo: ${(err as Error).message}`);
      }
      if (!facts.superuser) {
        throw new Error(
          'pgraft agent: the role in pgraft.pg_conninfo must be a superuser (it installs the extension and reads the data directory)',
        );
      }
      this.database = facts.database;
      this.dataDirectory = (await this.db.query('SHOW data_directory')).rows[0].data_directory;
      await this.publishNext();
      this.publishTimer = setInterval(() => this.statusChanged(), this.publishIntervalMs);
      if (facts.standby) {
        // A standby accepts neither LISTEN nor writes; serve requests once promoted.
        this.log.info('PostgreSQL is a hot standby: publishing status only');
        this.promotionTimer = setInterval(() => void this.checkPromotion(), PROMOTION_CHECK_MS);
      } else {
        await this.startRequests();
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Publish the state file soon: after the write in progress, together with other calls meanwhile. */
  statusChanged(): void {
    if (this.publishQueued) return;
    this.publishQueued = true;
    void this.publishNext(() => (this.publishQueued = false));
  }

  /** Publish STOPPING, stop serving, let requests in progress answer briefly, publish STOPPED. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.finalState = 'STOPPING';
    clearInterval(this.publishTimer ?? undefined);
    clearInterval(this.promotionTimer ?? undefined);
    await this.publishNext();
    const listener = this.listener;
    this.listener = null;
    await listener?.close().catch(() => undefined);
    await withTimeout(Promise.allSettled([...this.inFlight]), STOP_GRACE_MS);
    await this.db.end();
    this.finalState = 'STOPPED';
    await this.publishNext();
  }

  /** Writes run one after another: they share the temporary file. */
  private publishNext(before?: () => void): Promise<void> {
    this.publishing = this.publishing.then(() => {
      before?.();
      return this.publish();
    });
    return this.publishing;
  }

  /** Never rejects: a failed write must not stall the queue of later ones. */
  private async publish(): Promise<void> {
    if (!this.dataDirectory) return;
    try {
      const snapshot = this.options.status();
      await writeStatusFile(this.dataDirectory, {
        ...snapshot,
        workerState: this.finalState ?? snapshot.workerState,
        updatedAtMs: Date.now(),
        database: this.database,
        pid: process.pid,
      });
      if (this.publishFailing) this.log.info('writing the pgraft status file again');
      this.publishFailing = false;
    } catch (err) {
      // SQL shows STOPPED once the file is stale, which is the truth while this fails.
      if (!this.publishFailing) this.log.error({ err, dataDirectory: this.dataDirectory }, 'cannot write the pgraft status file');
      this.publishFailing = true;
    }
  }

  private async checkPromotion(): Promise<void> {
    try {
      const { rows } = await this.db.query('SELECT pg_is_in_recovery() AS standby');
      if (rows[0].standby || this.stopping || this.listener) return;
      clearInterval(this.promotionTimer ?? undefined);
      this.log.info('PostgreSQL was promoted: serving pgraft requests');
      await this.startRequests();
    } catch (err) {
      this.log.debug({ err }, 'promotion check failed');
    }
  }

  private async startRequests(): Promise<void> {
    if (this.options.installExtension ?? true) await this.installExtension();
    const listener = createSubscriber({ ...this.config, application_name: 'pgraft agent listener' }, {
      parse: (payload: string) => payload, // never trusted, only a wake-up
      paranoidChecking: 10_000,
      retryTimeout: 0, // keep trying while PostgreSQL is down
      retryInterval: () => {
        if (this.stopping) throw new Error('pgraft bridge stopped');
        return 250;
      },
    });
    listener.events.on('error', (err) => this.log.warn({ err }, 'pgraft request listener'));
    listener.events.on('reconnect', (attempt) => this.log.debug({ attempt }, 'reconnecting to PostgreSQL'));
    listener.events.on('connected', () => {
      if (this.stopping) {
        void listener.close().catch(() => undefined); // reconnected after stop(): let go
        return;
      }
      this.drain(); // requests sent while the connection was down
    });
    listener.notifications.on(RPC_CHANNEL, () => this.drain());
    this.listener = listener; // from here on, stop() closes it
    await listener.connect();
    await listener.listenTo(RPC_CHANNEL);
    this.drain();
  }

  private async installExtension(): Promise<void> {
    const { rows } = await this.db.query(
      `SELECT default_version, installed_version FROM pg_available_extensions WHERE name = 'pgraft'`,
    );
    if (rows.length === 0) {
      throw new Error(
        "pgraft agent: PostgreSQL does not have the pgraft extension files; run scripts/install-extension (it copies sql/ and migrations/ to $(pg_config --sharedir)/extension)",
      );
    }
    const { default_version: target, installed_version: installed } = rows[0];
    if (installed === null) {
      await this.db.query('CREATE EXTENSION IF NOT EXISTS pgraft');
      this.log.info({ version: target }, 'installed the pgraft extension');
    } else if (installed !== target) {
      await this.db.query('ALTER EXTENSION pgraft UPDATE');
      this.log.info({ from: installed, to: target }, 'upgraded the pgraft extension');
    }
  }

  /** Claim every pending request; runs once at a time, again if woken meanwhile. */
  private drain(): void {
    if (this.stopping) return;
    if (this.draining) {
      this.drainAgain = true;
      return;
    }
    this.draining = true;
    void (async () => {
      try {
        do {
          this.drainAgain = false;
          const { rows } = await this.db.query('SELECT id, op, args FROM pgraft._claim_pending()');
          if (this.claimFailing) this.log.info('claiming pgraft requests again');
          this.claimFailing = false;
          for (const row of rows) this.track(this.answer(row.id, row.op, row.args));
        } while (this.drainAgain && !this.stopping);
      } catch (err) {
        // Requests stay pending; try again shortly (and whenever the listener reconnects).
        if (!this.claimFailing) this.log.warn({ err }, 'cannot claim pgraft requests; retrying');
        this.claimFailing = true;
        setTimeout(() => this.drain(), DRAIN_RETRY_MS).unref();
      } finally {
        this.draining = false;
      }
    })();
  }

  /** Runs a claimed request and answers it. */
  private async answer(id: string, op: string, args: unknown): Promise<void> {
    const reply = JSON.stringify(await dispatch(this.options.control, op, args));
    if (this.answerInOneCall) {
      try {
        // Stores the reply, commits, then wakes the caller (extension 1.2 and later).
        await this.db.query('CALL pgraft._answer($1, $2)', [id, reply]);
        return;
      } catch (err) {
        if ((err as { code?: string }).code !== UNDEFINED_FUNCTION) {
          // Whatever failed, the caller must not wait for its timeout on a lock left held.
          await this.db.query('SELECT pgraft._release($1)', [id]).catch(() => undefined);
          throw err;
        }
        this.answerInOneCall = false;
        this.log.info('the installed pgraft extension predates 1.2: answering requests in two calls; run scripts/install-extension, then restart the agent, to upgrade it');
      }
    }
    try {
      await this.db.query('SELECT pgraft._reply($1, $2)', [id, reply]);
    } finally {
      // After the reply is committed: waking the caller earlier would show it no reply.
      await this.db.query('SELECT pgraft._release($1)', [id]).catch(() => undefined);
    }
  }

  private track(p: Promise<void>): void {
    const tracked = p.catch((err) => this.log.warn({ err }, 'cannot answer a pgraft request'));
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
  }
}

/** One connection, reopened on the next query after it breaks (e.g. PostgreSQL restarted). */
class Session {
  private client: Promise<Client> | null = null;
  private ended = false;

  constructor(
    private readonly config: ClientConfig,
    private readonly log: Logger,
  ) {}

  async query(text: string, params?: unknown[]) {
    if (this.ended) throw new Error('the pgraft bridge is stopped');
    const client = await this.connect();
    return client.query(text, params);
  }

  async end(): Promise<void> {
    this.ended = true;
    const client = this.client;
    this.client = null;
    if (client) await (await client.catch(() => null))?.end().catch(() => undefined);
  }

  private connect(): Promise<Client> {
    if (!this.client) {
      const client = new Client(this.config);
      const forget = () => {
        if (this.client === pending) this.client = null;
      };
      client.on('error', (err) => {
        this.log.debug({ err }, 'pgraft agent connection lost');
        forget();
      });
      client.on('end', forget);
      const pending: Promise<Client> = client.connect().then(
        () => client,
        (err) => {
          forget();
          throw err;
        },
      );
      this.client = pending;
    }
    return this.client;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
