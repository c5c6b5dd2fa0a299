/**
 * Which files to read. With --config FILE, that file; otherwise the PostgreSQL data
 * directory's postgresql.conf. Then, as PostgreSQL does, postgresql.auto.conf (written by
 * ALTER SYSTEM) from the data directory, which overrides it; that directory is the one
 * data_directory names when the configuration file sets it (Debian keeps postgresql.conf
 * in /etc/postgresql/<version>/<cluster>/ and the data in /var/lib/postgresql/...).
 */
import * as path from 'path';
import { ConfigFileSpec, readConfFiles } from './conf_files';
import { ConfigError } from './issues';

export const CONFIG_FILE = 'postgresql.conf';
/** Written by ALTER SYSTEM; may be missing. */
export const AUTO_CONFIG_FILE = 'postgresql.auto.conf';

/** The data directory's postgresql.conf, then its postgresql.auto.conf if present. */
export function defaultConfigFiles(dataDir: string): ConfigFileSpec[] {
  return [{ path: path.join(dataDir, CONFIG_FILE) }, { path: path.join(dataDir, AUTO_CONFIG_FILE), optional: true }];
}

export interface ConfigLocation {
  /** --config FILE */
  readonly configFile?: string;
  /** The PostgreSQL data directory (-D); PGDATA when omitted. */
  readonly dataDir?: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** data_directory as set in `file` (the last one wins), or null. Problems are left to the full load. */
function dataDirectorySetIn(file: string): string | null {
  const entries = readConfFiles([{ path: file, optional: true }]).entries;
  const set = entries.filter((e) => e.name.toLowerCase() === 'data_directory').pop();
  return set && set.value !== '' ? path.resolve(set.value) : null;
}

/** The files to load for the given --config / data directory, in reading order. */
export function resolveConfigFiles(where: ConfigLocation): ConfigFileSpec[] {
  const env = where.env ?? process.env;
  const dataDir = where.dataDir ?? env.PGDATA;
  const configFile = where.configFile ?? (dataDir ? path.join(dataDir, CONFIG_FILE) : undefined);
  if (!configFile) {
    throw new ConfigError([
      {
        severity: 'error',
        message: 'no configuration file: neither --config nor a PostgreSQL data directory (PGDATA) is given',
        hint: 'pass --config /path/to/postgresql.conf, or set PGDATA to the data directory of the PostgreSQL this agent runs beside',
      },
    ]);
  }
  const autoDir = dataDirectorySetIn(configFile) ?? dataDir;
  const files: ConfigFileSpec[] = [{ path: configFile }];
  if (autoDir) files.push({ path: path.join(autoDir, AUTO_CONFIG_FILE), optional: true });
  return files;
}
