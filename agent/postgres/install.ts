/**
 * Installs the extension files into PostgreSQL's extension folder by running
 * scripts/install-extension, the one implementation an operator also runs by hand.
 */
import { execFile } from 'child_process';
import { existsSync } from 'fs';
import * as path from 'path';
import { promisify } from 'util';

/** The repository's scripts/install-extension, found from this file (sources or dist/). */
export function installScriptPath(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'scripts', 'install-extension');
    if (existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) {
      throw new Error(`scripts/install-extension not found above ${__dirname}`);
    }
  }
}

/**
 * Copies sql/ and migrations/ into `$(pg_config --sharedir)/extension` and returns that
 * folder. `pgConfig` picks the PostgreSQL installation; by default the script's choice
 * (pg_config in PATH, else the newest /usr/lib/postgresql/<version>/bin/pg_config).
 */
export async function installExtensionFiles(pgConfig?: string): Promise<string> {
  const args = pgConfig ? [pgConfig] : [];
  const { stdout } = await promisify(execFile)(installScriptPath(), args);
  return stdout.trim();
}
