/**
 * Seeds that fail because of open bugs in the consensus core (agent/raft), each reported with
 * its seed. The seed suites expect exactly these failures: the suite stays green while a bug
 * is open, and goes red both on any new failure and on a listed seed that passes again (the
 * bug was fixed, or a change to the simulator moved the history: delete the entry, or rerun
 * the range with `npm run sim` and list what fails now).
 */

export interface KnownFailure {
  nodes: number;
  seed: number;
  /** The violated invariant, as the failure line names it, e.g. 'stale-read'. */
  invariant: string;
  bug: CoreBug;
}

/** Open core bugs that some seeds still hit; none at present. */
export enum CoreBug {}

export const KNOWN_FAILURES: readonly KnownFailure[] = [];

/** The failure line's seed and invariant, as batch.ts writes it: "seed S (N nodes): [invariant] ...". */
export function parseFailure(line: string): { seed: number; nodes: number; invariant: string } | null {
  const m = /^seed (\d+) \((\d+) nodes\): \[([a-z-]+)\]/.exec(line);
  return m === null ? null : { seed: Number(m[1]), nodes: Number(m[2]), invariant: m[3] };
}

export function isKnown(f: { seed: number; nodes: number; invariant: string }): boolean {
  return KNOWN_FAILURES.some((k) => k.seed === f.seed && k.nodes === f.nodes && k.invariant === f.invariant);
}
