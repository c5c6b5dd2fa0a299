/**
 * Applies the agent's heap settings (heap.ts) when the CLI starts: main.ts imports this module
 * before anything else, because loading the rest of the program is itself enough to grow the
 * young generation (to 8 MB, which it then kept) if the settings come later.
 */
import { tuneHeap } from './heap';

export const heapFlagsApplied: readonly string[] = tuneHeap();
