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

export enum CoreBug {
  /**
   * Without pre-vote, elections can stall for good after the leader of a small cluster removed
   * itself and the change reached only some voters: the voters' configurations then disagree
   * (one is two changes behind and does not even list another voter). A Vote of a lower term
   * gets no answer, so the candidate holding the newest configuration never learns the term it
   * must beat, while the voter two changes behind asks only a node that refuses it (and may
   * keep starting elections in every new term just before the one that could win).
   */
  StalledWithoutPreVote = 'no leader after healing: without pre-vote, voters whose configurations disagree stall elections',
}

export const KNOWN_FAILURES: readonly KnownFailure[] = [
  { nodes: 1, seed: 1382, invariant: 'liveness', bug: CoreBug.StalledWithoutPreVote },
  { nodes: 1, seed: 1688, invariant: 'liveness', bug: CoreBug.StalledWithoutPreVote },
  { nodes: 1, seed: 2328, invariant: 'liveness', bug: CoreBug.StalledWithoutPreVote },
];

/** The failure line's seed and invariant, as batch.ts writes it: "seed S (N nodes): [invariant] ...". */
export function parseFailure(line: string): { seed: number; nodes: number; invariant: string } | null {
  const m = /^seed (\d+) \((\d+) nodes\): \[([a-z-]+)\]/.exec(line);
  return m === null ? null : { seed: Number(m[1]), nodes: Number(m[2]), invariant: m[3] };
}

export function isKnown(f: { seed: number; nodes: number; invariant: string }): boolean {
  return KNOWN_FAILURES.some((k) => k.seed === f.seed && k.nodes === f.nodes && k.invariant === f.invariant);
}
