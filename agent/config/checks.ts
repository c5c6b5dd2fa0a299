/**
 * Checks across settings: each reads a few settings and reports errors (the agent must not
 * start like this) and warnings (it can, but the documents advise against it). A check is
 * skipped when one of the settings it reads is itself invalid, so each mistake is reported
 * once, at its cause.
 */
import * as fs from 'fs';
import { describeFsError } from './conf_files';
import { ConfigIssue, SettingSource, Severity, describeSource } from './issues';
import { formatEndpoint, isLoopback } from './members';
import { PgraftConfig, SETTING_NAMES, SettingName, formatValue, qualified, specOf } from './settings';
import { parseNumber } from './values';

export interface PostgresSetting {
  readonly value: string;
  readonly source: SettingSource;
}

export interface CheckContext {
  readonly config: PgraftConfig;
  readonly sources: Readonly<Record<SettingName, SettingSource>>;
  /** PostgreSQL's own settings found in the same files, by lower-case name (port, ...). */
  readonly postgres: ReadonlyMap<string, PostgresSetting>;
}

export interface Check {
  /** The settings it reads. */
  readonly uses: readonly SettingName[];
  run(ctx: CheckContext): ConfigIssue[];
}

/** `pgraft.heartbeat_interval = 200ms (/etc/postgresql/15/main/postgresql.conf:4)` */
function describe(ctx: CheckContext, name: SettingName, withWhere = true): string {
  const source = ctx.sources[name];
  const where = source.kind === 'default' ? ' (default)' : withWhere ? ` (${describeSource(source)})` : '';
  return `${qualified(name)} = ${formatValue(name, ctx.config[name])}${where}`;
}

type Show = (name: SettingName) => string;

/**
 * An issue placed at the first of `names` that was set somewhere (the one to edit). The
 * message names the settings with `show`, which adds where each was set, except for the
 * one the issue is placed at.
 */
function issue(
  ctx: CheckContext,
  severity: Severity,
  names: readonly SettingName[],
  message: string | ((show: Show) => string),
  hint?: string,
): ConfigIssue {
  const at = names.find((n) => ctx.sources[n].kind !== 'default') ?? names[0];
  const show: Show = (n) => describe(ctx, n, n !== at);
  const text = typeof message === 'string' ? message : message(show);
  return { severity, setting: qualified(at), source: ctx.sources[at], message: text, hint };
}

function list(names: readonly SettingName[]): string {
  const q = names.map(qualified);
  return q.length === 1 ? q[0] : `${q.slice(0, -1).join(', ')} and ${q[q.length - 1]}`;
}

/**
 * Two times where `short` must stay well below `long`: an error when it is not below at all,
 * a warning when it is above long / factor. The issue goes to the first of `placeAt` that
 * was set somewhere; texts receive the two values in milliseconds.
 */
function keepBelow(o: {
  short: SettingName;
  long: SettingName;
  factor: number;
  placeAt: readonly SettingName[];
  error: (show: Show) => string;
  errorHint: (short: number, long: number) => string;
  warning: (show: Show) => string;
  warningHint: (short: number, long: number) => string;
}): Check {
  return {
    uses: [o.short, o.long],
    run(ctx) {
      const short = ctx.config[o.short] as number;
      const long = ctx.config[o.long] as number;
      if (short >= long) return [issue(ctx, 'error', o.placeAt, o.error, o.errorHint(short, long))];
      if (short * o.factor > long) return [issue(ctx, 'warning', o.placeAt, o.warning, o.warningHint(short, long))];
      return [];
    },
  };
}

const ms = (n: number): string => formatValue('election_timeout', n);

/** The best practices' rule: election_timeout >= 10 × heartbeat_interval. */
const timing = keepBelow({
  short: 'heartbeat_interval',
  long: 'election_timeout',
  factor: 10,
  placeAt: ['election_timeout', 'heartbeat_interval'],
  error: (show) =>
    `${show('election_timeout')} must be greater than ${show('heartbeat_interval')}: ` +
    'followers would start elections between two heartbeats of a healthy leader',
  errorHint: (heartbeat) => `keep election_timeout at least 10 × heartbeat_interval, e.g. election_timeout = ${ms(10 * heartbeat)}`,
  warning: (show) =>
    `${show('election_timeout')} is less than 10 × ${show('heartbeat_interval')}: a few late heartbeats will start needless elections`,
  warningHint: (heartbeat, election) =>
    `raise election_timeout to ${ms(10 * heartbeat)} or lower heartbeat_interval to ${ms(Math.floor(election / 10))}`,
});

/** PostgreSQL's port from the files, or its default. */
function postgresPort(ctx: CheckContext): { port: number; where: string } | null {
  const s = ctx.postgres.get('port');
  if (!s) return { port: 5432, where: 'its default' };
  const n = parseNumber(s.value, null);
  return n.ok ? { port: n.value, where: `port = ${n.value}, ${describeSource(s.source)}` } : null;
}

const ports: Check = {
  uses: ['port', 'api_port', 'metrics_port', 'metrics_enabled'],
  run(ctx) {
    const c = ctx.config;
    const listeners: [SettingName, number][] = [
      ['port', c.port],
      ['api_port', c.api_port],
    ];
    if (c.metrics_enabled) listeners.push(['metrics_port', c.metrics_port]);
    const issues: ConfigIssue[] = [];
    for (const [i, [name, port]] of listeners.entries()) {
      const other = listeners.slice(0, i).find(([, p]) => p === port);
      if (other) {
        issues.push(
          issue(
            ctx,
            'error',
            [name, other[0]],
            (show) =>
              `${show(name)} is the same as ${show(other[0])}: two listeners cannot share a port`,
            'give each its own port (the defaults are port 7001, api_port 7002, metrics_port 9100)',
          ),
        );
      }
    }
    const pg = postgresPort(ctx);
    for (const [name, port] of listeners) {
      if (pg && port === pg.port) {
        issues.push(
          issue(
            ctx,
            'error',
            [name],
            (show) =>
              `${show(name)} is PostgreSQL's own port (${pg.where})`,
            `choose another port for ${qualified(name)}`,
          ),
        );
      }
    }
    return issues;
  },
};

const TLS: readonly SettingName[] = ['tls_cert_file', 'tls_key_file', 'tls_ca_file'];

const tlsAllOrNone: Check = {
  uses: TLS,
  run(ctx) {
    const set = TLS.filter((n) => ctx.config[n] !== null);
    const missing = TLS.filter((n) => ctx.config[n] === null);
    if (set.length === 0 || missing.length === 0) return [];
    return [
      issue(
        ctx,
        'error',
        set,
        `TLS needs all of ${list(TLS)}, but ${list(missing)} ${missing.length === 1 ? 'is' : 'are'} not set`,
        `set ${list(missing)} to run the connections between agents over mutual TLS, or unset ${list(set)} to run without TLS`,
      ),
    ];
  },
};

const apiTlsNeedsFiles: Check = {
  uses: ['api_tls', ...TLS],
  run(ctx) {
    // With some of them set, tlsAllOrNone already says which are missing.
    if (!ctx.config.api_tls || TLS.some((n) => ctx.config[n] !== null)) return [];
    return [
      issue(
        ctx,
        'error',
        ['api_tls'],
        (show) => `${show('api_tls')}, but none of ${list(TLS)} is set: the API has no certificate to serve`,
        `set ${list(TLS)} (the API serves the node's certificate; clients trust the CA), or turn ${qualified('api_tls')} off`,
      ),
    ];
  },
};

/** Files the agent must be able to read; a private key others can read is reported too. */
function readableFile(ctx: CheckContext, name: SettingName, secret: boolean): ConfigIssue[] {
  const file = ctx.config[name];
  if (typeof file !== 'string') return [];
  try {
    fs.accessSync(file, fs.constants.R_OK);
    const mode = fs.statSync(file).mode;
    if (secret && (mode & 0o007) !== 0) {
      return [
        issue(
          ctx,
          'warning',
          [name],
          `${qualified(name)} '${file}' can be read by every user of this machine (mode ${(mode & 0o777).toString(8)})`,
          `chmod 600 '${file}'`,
        ),
      ];
    }
    return [];
  } catch (err) {
    return [
      issue(
        ctx,
        'error',
        [name],
        `cannot read ${qualified(name)} '${file}': ${describeFsError(err)}`,
        "check the path, and that the agent's user may read the file",
      ),
    ];
  }
}

const tlsFiles: Check = {
  uses: TLS,
  run: (ctx) => TLS.flatMap((n) => readableFile(ctx, n, n === 'tls_key_file')),
};

const oneToken: Check = {
  uses: ['auth_token', 'auth_token_file'],
  run(ctx) {
    if (ctx.config.auth_token === null || ctx.config.auth_token_file === null) return [];
    return [
      issue(
        ctx,
        'error',
        ['auth_token_file', 'auth_token'],
        (show) =>
          `both ${show('auth_token')} and ${show('auth_token_file')} are set, and only one token can be in force`,
        'keep one of them (auth_token_file keeps the token out of postgresql.conf)',
      ),
    ];
  },
};

const membership: Check = {
  uses: ['initial_cluster', 'node_id', 'port', 'address'],
  run(ctx) {
    const c = ctx.config;
    const members = c.initial_cluster;
    const n = members.length;
    if (n === 0) return [];
    const issues: ConfigIssue[] = [];
    const self = members.find((m) => m.id === c.node_id);
    if (!self) {
      issues.push(
        issue(
          ctx,
          'warning',
          ['initial_cluster', 'node_id'],
          `node ${c.node_id} is not in ${qualified('initial_cluster')} (nodes ${members.map((m) => m.id).join(', ')}): ` +
            'it takes no part in bootstrapping the cluster and waits until the leader adds it',
          `if node ${c.node_id} is a founding member, add ${c.node_id}=${formatEndpoint(c.address, c.port)} to initial_cluster on every node; ` +
            `otherwise add it on the leader: SELECT pgraft_add_node(${c.node_id}, '${c.address}', ${c.port});`,
        ),
      );
    } else if (self.port !== c.port) {
      issues.push(
        issue(
          ctx,
          'warning',
          ['initial_cluster', 'port'],
          (show) =>
            `${qualified('initial_cluster')} gives this node (${c.node_id}) port ${self.port}, but it listens on ${show('port')}: ` +
              'the other nodes will not reach it',
          `make them the same`,
        ),
      );
    }
    if (n % 2 === 0) {
      const tolerated = Math.floor((n - 1) / 2);
      issues.push(
        issue(
          ctx,
          'warning',
          ['initial_cluster'],
          `${n} members tolerate ${tolerated} failed node${tolerated === 1 ? '' : 's'}, no more than ${n - 1} would: ` +
            'the extra node adds replication work, not availability',
          'use an odd number of nodes: 3, 5 or 7',
        ),
      );
    }
    if (n > 7) {
      issues.push(
        issue(
          ctx,
          'warning',
          ['initial_cluster'],
          `${n} members: every write waits for ${Math.floor(n / 2) + 1} of them, and beyond 7 nodes consensus slows down with little gain in availability`,
          'keep 3, 5 or 7 voting members; for more capacity use several clusters or read replicas outside the Raft cluster',
        ),
      );
    }
    const remote = members.filter((m) => m.id !== c.node_id && !isLoopback(m.host));
    if (isLoopback(c.address) && remote.length > 0) {
      issues.push(
        issue(
          ctx,
          'warning',
          ['address'],
          (show) =>
            `${show('address')} accepts connections from this machine only, but ${qualified('initial_cluster')} ` +
              `has nodes on other hosts (${remote.map((m) => m.host).join(', ')})`,
          `set pgraft.address to an address the other nodes can reach${self ? `, e.g. '${self.host}'` : ''}`,
        ),
      );
    }
    return issues;
  },
};

const rpcTimeout: Check = {
  uses: ['rpc_timeout', 'election_timeout'],
  run(ctx) {
    if (ctx.config.rpc_timeout >= ctx.config.election_timeout) return [];
    return [
      issue(
        ctx,
        'warning',
        ['rpc_timeout', 'election_timeout'],
        (show) =>
          `${show('rpc_timeout')} is shorter than ${show('election_timeout')}: ` +
            'SQL calls made while a new leader is elected will fail',
        'keep rpc_timeout well above election_timeout',
      ),
    ];
  },
};

/** The SQL status functions take a state file older than status_timeout for a dead agent. */
const stateFile = keepBelow({
  short: 'state_file_interval',
  long: 'status_timeout',
  factor: 2,
  placeAt: ['state_file_interval', 'status_timeout'],
  error: (show) =>
    `${show('state_file_interval')} is not below ${show('status_timeout')}: ` +
    'the status functions would report a running agent as STOPPED between two writes of its state file',
  errorHint: (_, timeout) => `keep state_file_interval well below status_timeout, e.g. ${ms(Math.floor(timeout / 6))}`,
  warning: (show) =>
    `${show('state_file_interval')} is more than half of ${show('status_timeout')}: ` +
    'one late write of the state file makes the status functions report the agent as STOPPED',
  warningHint: (_, timeout) => `keep state_file_interval well below status_timeout, e.g. ${ms(Math.floor(timeout / 6))}`,
});

const SQL_READ: readonly SettingName[] = SETTING_NAMES.filter((n) => specOf(n).readBySql);

/** The SQL functions read some settings from PostgreSQL, which never sees the agent's environment. */
const sqlSeesFiles: Check = {
  uses: SQL_READ,
  run(ctx) {
    return SQL_READ.filter((n) => ctx.sources[n].kind === 'env' || ctx.sources[n].kind === 'option').map((n) =>
      issue(
        ctx,
        'warning',
        [n],
        `the SQL functions inside PostgreSQL read ${qualified(n)} too, and do not see this value: they keep the one in postgresql.conf (or their default)`,
        `set ${qualified(n)} in postgresql.conf (or with ALTER SYSTEM) so that the agent and SQL agree`,
      ),
    );
  },
};

export const CHECKS: readonly Check[] = [timing, ports, tlsAllOrNone, apiTlsNeedsFiles, tlsFiles, oneToken, membership, rpcTimeout, stateFile, sqlSeesFiles];
