import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tuneHeap } from '../../../agent/cli/heap';

const HEAP_JS = path.resolve(__dirname, '../../../dist/agent/cli/heap.js');

/** Size of V8's young generation in a child node after allocating objects that partly survive. */
function youngGenerationAfterChurn(tune: boolean): number {
  const probe = `
    const v8 = require('node:v8');
    if (${tune}) require(${JSON.stringify(HEAP_JS)}).tuneHeap([], '');
    let keep = [];
    for (let i = 0; i < 3e6; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 2e5) keep = []; }
    process.stdout.write(String(v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size));
  `;
  const r = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  if (r.status !== 0) throw new Error(`probe failed: ${r.stderr}`);
  return Number(r.stdout);
}

describe('tuneHeap', () => {
  test('keeps heap flags the operator gave node, on the command line or in NODE_OPTIONS', () => {
    expect(tuneHeap(['--max-old-space-size=512'], '')).toEqual([]);
    expect(tuneHeap([], '--max-semi-space-size=16')).toEqual([]);
    expect(tuneHeap(['--heap-growing-percent=50'], '')).toEqual([]);
  });

  test('keeps the young generation at its initial size where V8 would grow it to its maximum', () => {
    // Run in child processes (of the build, which scripts/test makes first): the flags would
    // change this test runner's own heap.
    expect(fs.existsSync(HEAP_JS)).toBe(true);
    const untuned = youngGenerationAfterChurn(false);
    const tuned = youngGenerationAfterChurn(true);
    expect(untuned).toBeGreaterThanOrEqual(16 * 1024 * 1024);
    expect(tuned).toBeLessThanOrEqual(4 * 1024 * 1024);
  });
});
