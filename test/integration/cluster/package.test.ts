/**
 * The release tarball (`npm pack`): what an operator installs on each server with
 * `npm install -g pgraft-VERSION.tgz`. It holds the built agent, the extension files and the
 * script that installs them, the systemd unit and the docs, and nothing of the tests or the
 * benchmark; its extension installer and its agent run from it.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, assertBuilt, freePorts, http, tempDir, waitFor } from '../../support/agents';

test('the packed tarball holds what an installation needs, and its agent starts a cluster and answers', async () => {
  assertBuilt();
  const dir = tempDir('pgraft-pack-');
  let agent: ReturnType<typeof spawn> | null = null;
  try {
    // scripts/test has built dist/ already; `npm pack` alone would build first (prepack).
    const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: REPO, encoding: 'utf8' });
    const [packed] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
    const files = packed.files.map((f) => f.path);
    for (const needed of [
      'dist/agent/cli/main.js',
      'dist/agent/node.js',
      'sql/pgraft.control',
      'sql/pgraft--1.0.sql',
      'migrations/pgraft--1.1--1.2.sql',
      'scripts/install-extension',
      'packaging/systemd/pgraft-agent@.service',
      'docs/cli.md',
      'package.json',
    ]) {
      expect(files).toContain(needed);
    }
    expect(files.filter((f) => /^(test|bench|dist\/test|dist\/bench|scripts\/(test|cluster|setup))\b/.test(f))).toEqual([]);

    execFileSync('tar', ['xzf', path.join(dir, packed.filename), '-C', dir]);
    const pkg = path.join(dir, 'package');
    // The README's install step: the extension files from the package into PostgreSQL (the
    // same files scripts/test installed, so nothing changes for the other tests).
    const extensionDir = execFileSync(path.join(pkg, 'scripts', 'install-extension'), { encoding: 'utf8' }).trim();
    expect(fs.readFileSync(path.join(extensionDir, 'pgraft.control'), 'utf8')).toBe(fs.readFileSync(path.join(pkg, 'sql', 'pgraft.control'), 'utf8'));
    // What `npm install` would add: the dependencies.
    fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(pkg, 'node_modules'));
    const cli = path.join(pkg, 'dist', 'agent', 'cli', 'main.js');
    const version = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
    expect(execFileSync(process.execPath, [cli, '--version'], { encoding: 'utf8' })).toBe(`${version}\n`);

    const [raft, api] = await freePorts(2);
    const conf = path.join(dir, 'postgresql.conf');
    fs.writeFileSync(
      conf,
      [
        "pgraft.cluster_id = 'packed'",
        'pgraft.node_id = 1',
        "pgraft.address = '127.0.0.1'",
        `pgraft.port = ${raft}`,
        `pgraft.api_port = ${api}`,
        'pgraft.metrics_enabled = off',
        `pgraft.data_dir = '${path.join(dir, 'data')}'`,
        "pgraft.pg_conninfo = ''",
      ].join('\n') + '\n',
    );
    agent = spawn(process.execPath, [cli, 'agent', '--config', conf, '--bootstrap'], { stdio: 'ignore' });
    const status = await waitFor('the packed agent to lead its one-node cluster', async () => {
      const a = await http(api, 'GET', '/v1/status', undefined, {}, 1000).catch(() => null);
      return a?.status === 200 && a.body.role === 'leader' ? a.body : null;
    });
    expect(status).toMatchObject({ clusterId: 'packed', nodeId: 1, version });
  } finally {
    if (agent && agent.exitCode === null) {
      const exited = new Promise((resolve) => agent!.once('exit', resolve));
      agent.kill('SIGKILL');
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
