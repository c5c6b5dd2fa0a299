/** "Did you mean ...?" for misspelled setting names. */

/** Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/**
 * The candidate closest to `word`, if it is close enough to be what was meant: a few typos
 * away, or the word with something added or left off at the end (heartbeat ->
 * heartbeat_interval, election_timeout_ms -> election_timeout).
 */
export function closest<T extends string>(word: string, candidates: readonly T[]): T | null {
  const w = word.toLowerCase();
  let best: T | null = null;
  let bestScore = Infinity;
  for (const c of candidates) {
    const distance = editDistance(w, c);
    const prefixMatch = w.length >= 4 && (c.startsWith(w) || w.startsWith(c));
    const score = distance <= Math.max(2, Math.floor(w.length / 4)) ? distance : prefixMatch ? 100 + distance : Infinity;
    if (score < bestScore) {
      best = c;
      bestScore = score;
    }
  }
  return best;
}
