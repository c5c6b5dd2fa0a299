import { NodeId } from './types';

/** Majority arithmetic over a set of voters (etcd's quorum/majority.go). */

export enum VoteResult {
  Pending = 0,
  Lost = 1,
  Won = 2,
}

export function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}

/**
 * The largest index acknowledged by a majority of voters: order the voters' match indexes
 * from highest to lowest and take the one a majority has reached. A voter with no progress
 * counts as 0. The leader asks after every acknowledgement; clusters have a handful of
 * voters, so an insertion sort into a reused array does it without allocating.
 */
export function committedIndex(voters: readonly NodeId[], matchOf: (id: NodeId) => number): number {
  const n = voters.length;
  if (n === 0) return Infinity; // no voters: nothing constrains the commit (never happens for a live config)
  const matches = scratch.length >= n ? scratch : (scratch = new Array<number>(n));
  for (let i = 0; i < n; i++) {
    const m = matchOf(voters[i]);
    let j = i;
    for (; j > 0 && matches[j - 1] < m; j--) matches[j] = matches[j - 1];
    matches[j] = m;
  }
  return matches[majority(n) - 1];
}

let scratch: number[] = [];

/** Outcome of an election (or of any quorum poll) given the answers received so far. */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.length === 0) return VoteResult.Won;
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = majority(voters.length);
  if (granted >= q) return VoteResult.Won;
  if (granted + missing >= q) return VoteResult.Pending;
  return VoteResult.Lost;
}
