import { setFlagsFromString } from 'node:v8';

/**
 * V8 settings for the agent's heap, applied as the pgraft CLI starts (heap_at_start.ts).
 *
 * The agent's live heap is small (the log since the last snapshot, the key-value state, some
 * buffers) while it allocates fast under load. V8's defaults size the heap for throughput:
 * the young generation doubles up to 2 × 16 MB and the old generation grows well beyond the
 * live set, so an agent under load held 150-170 MB of RSS for 20-30 MB of live data. Keeping
 * the young generation at its initial size and growing the old one by half at a time saves
 * 20-30 MB of RSS under load at no cost in throughput (measured with 40,000 keys at c=64:
 * 12.6-13.3k ops/s and 121 MB, against 12.1-12.4k ops/s and 140-152 MB with V8's defaults).
 * Growing it by only 20% saved another 20 MB but cost a quarter of the throughput: with a
 * large key-value store, every major collection marks all of it.
 *
 * Both flags take effect at run time. A heap flag the operator gave node (on its command
 * line or in NODE_OPTIONS) wins: then none of these is applied.
 */
export const HEAP_FLAGS = ['--semi-space-growth-factor=1', '--heap-growing-percent=50'] as const;

const OPERATOR_HEAP_FLAG = /--(max|min)-semi-space-size|--semi-space-growth-factor|--heap-growing-percent|--max-old-space-size|--max-heap-size|--optimize-for-size/;

/** Applies HEAP_FLAGS unless node was given heap flags; returns the flags applied. */
export function tuneHeap(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  if (execArgv.some((a) => OPERATOR_HEAP_FLAG.test(a)) || OPERATOR_HEAP_FLAG.test(nodeOptions)) return [];
  for (const f of HEAP_FLAGS) setFlagsFromString(f);
  return [...HEAP_FLAGS];
}
