/**
 * The state file the read-only pgraft_* status functions read. It lives in the data
 * directory, where pg_read_file() may read it, and is replaced atomically (write a temp
 * file, then rename) so a reader sees the old or the new version, never half of one.
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import type { StatusFile } from './control';

/** Relative to the data directory; sql/pgraft--1.0.sql reads the same path. */
export const STATUS_FILE = path.join('pgraft', 'status.json');

export async function writeStatusFile(dataDirectory: string, status: StatusFile): Promise<void> {
  const file = path.join(dataDirectory, STATUS_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
  // World-readable: the server reads it as its own operating system user, which need not
  // be the agent's, and it holds nothing secret.
  await fs.writeFile(tmp, JSON.stringify(status), { mode: 0o644 });
  await fs.rename(tmp, file);
}
