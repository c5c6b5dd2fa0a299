/**
 * The shipped systemd unit (packaging/systemd/pgraft-agent@.service): systemd accepts it,
 * and its command line and exit-status policy fit the pgraft command.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ExitCode } from '../../../agent/cli/exit_codes';
import { REPO, runCli, tempDir } from '../../support/agents';

const UNIT = path.join(REPO, 'packaging', 'systemd', 'pgraft-agent@.service');
const text = fs.readFileSync(UNIT, 'utf8');

/** The value of `key=` in the unit (one occurrence expected). */
function directive(key: string): string {
  const values = text.split('\n').filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1));
  expect(values).toHaveLength(1);
  return values[0];
}

beforeAll(() => {
  execFileSync(path.join(REPO, 'scripts', 'ensure-tool'), ['systemd-analyze', 'systemd'], { stdio: 'inherit', timeout: 300_000 });
}, 300_000);

test('systemd-analyze verify accepts an instance of the unit without a complaint', () => {
  const dir = tempDir('pgraft-unit-');
  try {
    const instance = path.join(dir, 'pgraft-agent@15-main.service');
    fs.copyFileSync(UNIT, instance);
    const r = spawnSync('systemd-analyze', ['verify', instance], { encoding: 'utf8' });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("the unit's command line starts the agent with the cluster's postgresql.conf, and a bad configuration ends in the status that stops restarts", async () => {
  // %I of pgraft-agent@15-main is 15/main; the test puts /etc/postgresql under a directory of its own.
  const exec = directive('ExecStart').split(' ');
  expect(exec.slice(0, 2)).toEqual(['/usr/bin/env', 'pgraft']);
  const dir = tempDir('pgraft-unit-');
  try {
    const conf = path.join(dir, 'etc', 'postgresql', '15', 'main', 'postgresql.conf');
    fs.mkdirSync(path.dirname(conf), { recursive: true });
    fs.writeFileSync(conf, "pgraft.node_id = 1\npgraft.cluster_id = 'c'\npgraft.data_dir = 'relative/dir'\n");
    const args = exec.slice(2).map((a) => a.replace('/etc/postgresql/%I/', `${path.dirname(conf)}/`));
    expect(args).toEqual(['agent', '--config', conf]);
    const r = await runCli(args);
    expect(r.stderr).toContain(`${conf}:3`);
    expect(r.stderr).toContain('pgraft.data_dir');
    expect(r.code).toBe(ExitCode.USAGE);
    expect(directive('RestartPreventExitStatus').split(' ')).toEqual([String(ExitCode.USAGE), String(ExitCode.FENCED)]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
