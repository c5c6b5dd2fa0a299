import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CommandError, apiTarget } from '../../../agent/cli/client';
import { ExitCode } from '../../../agent/cli/exit_codes';

function usageError(f: () => unknown): CommandError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(CommandError);
    expect((e as CommandError).exitCode).toBe(ExitCode.USAGE);
    return e as CommandError;
  }
  throw new Error('no error was thrown');
}

describe('--api and --cacert', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgraft-cacert-'));
    fs.writeFileSync(path.join(dir, 'ca.crt'), 'PEM');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('is plain HTTP for host:port and http://, HTTPS for https:// or a CA given', () => {
    expect(apiTarget('10.0.0.1:7002')).toEqual({ api: '10.0.0.1:7002' });
    expect(apiTarget('http://10.0.0.1:7002/')).toEqual({ api: '10.0.0.1:7002' });
    expect(apiTarget('HTTPS://db1:7002')).toEqual({ api: 'db1:7002', tls: { minVersion: 'TLSv1.2' } });
    const ca = Buffer.from('PEM');
    expect(apiTarget('https://[::1]:7002', path.join(dir, 'ca.crt'))).toEqual({ api: '[::1]:7002', tls: { ca, minVersion: 'TLSv1.2' } });
    expect(apiTarget('db1:7002', path.join(dir, 'ca.crt'))).toEqual({ api: 'db1:7002', tls: { ca, minVersion: 'TLSv1.2' } });
  });

  it('refuses another scheme, a CA for plain HTTP, and a CA file it cannot read', () => {
    expect(usageError(() => apiTarget('ftp://db1:7002')).message).toBe('--api ftp://db1:7002: the API speaks http or https');
    const withPath = usageError(() => apiTarget('https://db1:7002/v1/status'));
    expect([withPath.message, withPath.hint]).toEqual(["--api https://db1:7002/v1/status: give the API's address without a path", 'e.g. --api https://db1:7002']);
    const plain = usageError(() => apiTarget('http://db1:7002', path.join(dir, 'ca.crt')));
    expect(plain.hint).toBe('give --api https://db1:7002');
    expect(usageError(() => apiTarget('https://db1:7002', path.join(dir, 'none.crt'))).message).toMatch(/^cannot read --cacert .*none\.crt: ENOENT/);
  });
});
