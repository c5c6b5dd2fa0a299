import { committedIndex, majority } from '../../../agent/raft/quorum';
import { SeededRng } from '../../../agent/raft/rng';

/** The definition: the match index that a majority of voters has reached or passed. */
function byDefinition(matches: number[]): number {
  let best = 0;
  for (const candidate of matches) {
    const reached = matches.filter((m) => m >= candidate).length;
    if (reached >= majority(matches.length) && candidate > best) best = candidate;
  }
  return best;
}

describe('committedIndex', () => {
  test('is the index a majority has reached, for clusters of 1 to 9 voters in any order', () => {
    const rng = new SeededRng(7);
    for (let trial = 0; trial < 5000; trial++) {
      // Sizes vary from call to call, so a reused work array of another length is exercised too.
      const n = 1 + rng.intn(9);
      const matches = Array.from({ length: n }, () => rng.intn(20));
      const voters = matches.map((_, i) => i + 1);
      const got = committedIndex(voters, (id) => matches[id - 1]);
      expect({ matches, got }).toEqual({ matches, got: byDefinition(matches) });
    }
  });

  test('counts a voter without progress as 0, and an empty configuration constrains nothing', () => {
    const match = new Map([
      [1, 10],
      [2, 7],
    ]);
    expect(committedIndex([1, 2, 3], (id) => match.get(id) ?? 0)).toBe(7);
    expect(committedIndex([1, 2, 3, 4], (id) => match.get(id) ?? 0)).toBe(0);
    expect(committedIndex([], () => 0)).toBe(Infinity);
  });
});
