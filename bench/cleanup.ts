/**
 * Everything the benchmark starts is registered here, so that it is removed whatever happens:
 * at the normal end, on SIGINT/SIGTERM, on an uncaught error and when the process exits.
 * Removal is synchronous (kill -CONT then -KILL by pid, rm -rf by path) so that it also works
 * from a signal handler and from the 'exit' event.
 */
import * as fs from 'node:fs';

const pids = new Set<number>();
const dirs = new Set<string>();
const hooks = new Set<() => void>();
let done = false;

export function trackPid(pid: number | undefined): void {
  if (pid) pids.add(pid);
}

export function untrackPid(pid: number | undefined): void {
  if (pid) pids.delete(pid);
}

export function trackDir(dir: string): void {
  dirs.add(dir);
}

/** A synchronous step of the final clean-up (e.g. stopping PostgreSQL servers). */
export function onCleanup(hook: () => void): void {
  hooks.add(hook);
}

export function cleanupSync(): void {
  if (done) return;
  done = true;
  for (const pid of pids) {
    for (const sig of ['SIGCONT', 'SIGKILL'] as const) {
      try {
        process.kill(pid, sig);
      } catch {
        // already gone
      }
    }
  }
  pids.clear();
  for (const h of hooks) {
    try {
      h();
    } catch (e) {
      process.stderr.write(`bench: clean-up step failed: ${(e as Error).message}\n`);
    }
  }
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  dirs.clear();
}

/** Interrupted or failing runs leave nothing behind. */
export function installCleanupHandlers(): void {
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal}: stopping every process and removing the temporary directories\n`);
      cleanupSync();
      process.exit(code);
    });
  }
  process.on('uncaughtException', (e) => {
    process.stderr.write(`bench: ${e.stack ?? e.message}\n`);
    cleanupSync();
    process.exit(1);
  });
  process.on('exit', () => cleanupSync());
}
