import * as fs from 'fs';
import * as path from 'path';
import { ConfigError, loadConfig, resolveConfigFiles } from '../../../agent/config';
import { useTempDirs } from './tempfiles';

const tempDir = useTempDirs();

const BASE = "pgraft.node_id = 1\npgraft.data_dir = '/var/lib/postgresql/pgraft'\n";

describe('which files are read', () => {
  it('reads the data directory\'s postgresql.conf, then its postgresql.auto.conf', () => {
    const dir = tempDir({ 'postgresql.conf': `${BASE}pgraft.election_timeout = 1000\n`, 'postgresql.auto.conf': 'pgraft.election_timeout = 2000\n' });
    const files = resolveConfigFiles({ dataDir: dir, env: {} });
    expect(files).toEqual([{ path: path.join(dir, 'postgresql.conf') }, { path: path.join(dir, 'postgresql.auto.conf'), optional: true }]);
    expect(loadConfig({ files, env: {} }).config.election_timeout).toBe(2000);
  });

  it('takes the data directory from PGDATA', () => {
    const dir = tempDir({ 'postgresql.conf': BASE });
    expect(resolveConfigFiles({ env: { PGDATA: dir } })[0]).toEqual({ path: path.join(dir, 'postgresql.conf') });
  });

  it('reads --config FILE instead, with the auto.conf of the data directory it names (Debian layout)', () => {
    const root = tempDir({
      'etc/postgresql.conf': `data_directory = '__DATA__'\n${BASE}pgraft.election_timeout = 1000\n`,
      'data/postgresql.auto.conf': "pgraft.election_timeout = '3000'\n",
    });
    const etc = path.join(root, 'etc', 'postgresql.conf');
    const data = path.join(root, 'data');
    fs.writeFileSync(etc, fs.readFileSync(etc, 'utf8').replace('__DATA__', data));
    const files = resolveConfigFiles({ configFile: etc, env: { PGDATA: '/elsewhere' } });
    expect(files).toEqual([{ path: etc }, { path: path.join(data, 'postgresql.auto.conf'), optional: true }]);
    expect(loadConfig({ files, env: {} }).config.election_timeout).toBe(3000);
  });

  it('reads --config FILE alone when neither it nor the caller names a data directory', () => {
    const dir = tempDir({ 'pgraft.conf': BASE });
    expect(resolveConfigFiles({ configFile: path.join(dir, 'pgraft.conf'), env: {} })).toEqual([{ path: path.join(dir, 'pgraft.conf') }]);
  });

  it('says what to do when there is nothing to read', () => {
    let thrown: unknown;
    try {
      resolveConfigFiles({ env: {} });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).errors[0].hint).toMatch(/--config .*PGDATA/);
  });
});
