import * as fs from 'fs';
import * as path from 'path';
import { LoadedConfig, describeChange, formatIssue, loadConfig, reloadConfig } from '../../../agent/config';
import { useTempDirs } from './tempfiles';

const tempDir = useTempDirs();

const BASE = "pgraft.node_id = 1\npgraft.data_dir = '/var/lib/postgresql/pgraft'\n";

/** A running configuration from `text`, and a function that rewrites the file before a reload. */
function running(text: string, env: Record<string, string> = {}): { loaded: LoadedConfig; file: string; rewrite: (t: string) => void } {
  const dir = tempDir({ 'postgresql.conf': text });
  const file = path.join(dir, 'postgresql.conf');
  return { loaded: loadConfig({ files: [file], env }), file, rewrite: (t) => fs.writeFileSync(file, t) };
}

describe('reload', () => {
  it('applies live settings and holds restart-only ones at their running values until a restart', () => {
    const { loaded, file, rewrite } = running(`${BASE}pgraft.election_timeout = 1000\npgraft.port = 7001\n`);
    rewrite(
      `${BASE}pgraft.election_timeout = 2s\npgraft.port = 7005\npgraft.log_level = debug\n` +
        `pgraft.data_dir = '/srv/pgraft'\npgraft.batch_size = 200\n`,
    );
    const r = reloadConfig(loaded);
    expect(r.ok).toBe(true);
    expect(r.errors).toEqual([]);
    expect(r.applied.map(describeChange)).toEqual([
      `pgraft.election_timeout: 1s -> 2s (${file}:3)`,
      `pgraft.batch_size: 100 -> 200 (${file}:7)`,
      `pgraft.log_level: info -> debug (${file}:5)`,
    ]);
    expect(r.pendingRestart.map(describeChange)).toEqual([
      `pgraft.port: 7001 -> 7005 (${file}:4)`,
      `pgraft.data_dir: '/var/lib/postgresql/pgraft' -> '/srv/pgraft' (${file}:6)`,
    ]);
    expect(r.loaded.config).toMatchObject({
      election_timeout: 2000,
      log_level: 'debug',
      batch_size: 200,
      port: 7001,
      data_dir: '/var/lib/postgresql/pgraft',
    });
    expect(r.loaded.sources.port).toEqual({ kind: 'file', file, line: 4 }); // where the running value came from
    expect(r.loaded.sources.election_timeout).toEqual({ kind: 'file', file, line: 3 });
  });

  it('keeps reporting a pending change on every reload until the restart, and forgets it when reverted', () => {
    const { loaded, rewrite } = running(`${BASE}pgraft.port = 7001\n`);
    rewrite(`${BASE}pgraft.port = 7005\n`);
    const first = reloadConfig(loaded);
    const second = reloadConfig(first.loaded);
    expect(second.pendingRestart.map((c) => c.name)).toEqual(['port']);
    rewrite(`${BASE}pgraft.port = 7001\n`);
    const third = reloadConfig(second.loaded);
    expect(third.pendingRestart).toEqual([]);
    expect(third.applied).toEqual([]);
  });

  it('keeps the running configuration and reports every error when the files are broken', () => {
    const { loaded, file, rewrite } = running(`${BASE}pgraft.election_timeout = 1000\n`);
    rewrite(`${BASE}pgraft.election_timeout = 3000\npgraft.heartbeat_interval = 5000\npgraft.electon_timeout = 1\npgraft.port = 'x'\n`);
    const r = reloadConfig(loaded);
    expect(r.ok).toBe(false);
    expect(r.loaded).toBe(loaded);
    expect(r.applied).toEqual([]);
    expect(r.pendingRestart).toEqual([]);
    expect(r.errors.map((e) => formatIssue(e).split('\n')[0])).toEqual([
      `${file}:3: pgraft.election_timeout = 3s must be greater than pgraft.heartbeat_interval = 5s (${file}:4): ` +
        'followers would start elections between two heartbeats of a healthy leader',
      `${file}:5: unknown setting "pgraft.electon_timeout"; did you mean "pgraft.election_timeout"?`,
      `${file}:6: invalid value "x" for pgraft.port: expected an integer`,
    ]);
  });

  it('reports nothing when nothing changed, and passes on warnings', () => {
    const { loaded } = running(`${BASE}pgraft.heartbeat_interval = 200\n`);
    const r = reloadConfig(loaded);
    expect(r).toMatchObject({ ok: true, applied: [], pendingRestart: [], errors: [] });
    expect(r.warnings.map((w) => w.setting)).toEqual(['pgraft.heartbeat_interval']);
    expect(r.loaded.config).toEqual(loaded.config);
  });

  it('reads the environment it is given', () => {
    const { loaded } = running(BASE, { PGRAFT_RPC_TIMEOUT: '5s' });
    const r = reloadConfig(loaded, { ...loaded.loadOptions, env: { PGRAFT_RPC_TIMEOUT: '10s', PGRAFT_NODE_ID: '2' } });
    expect(r.applied.map(describeChange)).toEqual(['pgraft.rpc_timeout: 5s -> 10s (environment variable PGRAFT_RPC_TIMEOUT)']);
    expect(r.pendingRestart.map(describeChange)).toEqual(['pgraft.node_id: 1 -> 2 (environment variable PGRAFT_NODE_ID)']);
    expect(r.loaded.config.node_id).toBe(1);
  });

  it('picks up a rotated token from auth_token_file without showing it', () => {
    const dir = tempDir({ token: 'first-token' });
    const tokenFile = path.join(dir, 'token');
    fs.chmodSync(tokenFile, 0o600);
    const { loaded } = running(`${BASE}pgraft.auth_token_file = '${tokenFile}'\n`);
    expect(loaded.config.auth_token).toBe('first-token');
    fs.writeFileSync(tokenFile, 'second-token\n');
    const r = reloadConfig(loaded);
    expect(r.loaded.config.auth_token).toBe('second-token');
    expect(r.applied.map((c) => [c.setting, c.from, c.to])).toEqual([['pgraft.auth_token', '(hidden)', '(hidden)']]);
    expect(JSON.stringify(r.applied)).not.toMatch(/first-token|second-token/);
  });

  it('sees files that an include brings in after the start', () => {
    const { loaded, file, rewrite } = running(`${BASE}include_if_exists 'local.conf'\n`);
    fs.writeFileSync(path.join(path.dirname(file), 'local.conf'), 'pgraft.snapshot_interval = 5000\n');
    rewrite(`${BASE}include_if_exists 'local.conf'\n`);
    const r = reloadConfig(loaded);
    expect(r.applied.map((c) => `${c.setting} ${c.to}`)).toEqual(['pgraft.snapshot_interval 5000']);
    expect(r.loaded.filesRead).toHaveLength(2);
  });
});
