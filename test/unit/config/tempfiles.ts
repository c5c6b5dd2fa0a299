/** Temporary directories under os.tmpdir() for config tests, removed after each test even when it fails. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** Registers the cleanup hook; call at the top of a test file, use the returned function in tests. */
export function useTempDirs(): (files?: Record<string, string>) => string {
  const made: string[] = [];
  afterEach(() => {
    for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });
  return (files = {}) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgraft-config-'));
    made.push(dir);
    writeFiles(dir, files);
    return dir;
  };
}

/** Writes `relative path -> content` under dir, creating folders as needed. */
export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(dir, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
  }
}
