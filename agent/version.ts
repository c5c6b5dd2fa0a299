import * as fs from 'node:fs';
import * as path from 'node:path';

/** The package's version, from the package.json above this file (source or dist/). */
function readVersion(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: string }).version ?? 'unknown';
  }
  return 'unknown';
}

/** The version of pgraft this process runs. */
export const VERSION = readVersion();
