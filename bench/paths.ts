import * as fs from 'node:fs';
import * as path from 'node:path';

/** The checkout: this file runs from dist/bench/ (built) or bench/ (sources). */
export const REPO = [path.resolve(__dirname, '..'), path.resolve(__dirname, '..', '..')].find((d) => fs.existsSync(path.join(d, 'package.json')) && fs.existsSync(path.join(d, 'agent')))!;
export const CLI = path.join(REPO, 'dist', 'agent', 'cli', 'main.js');

export function assertBuilt(): void {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npx tsc -p tsconfig.json; npm run bench does it)`);
}
