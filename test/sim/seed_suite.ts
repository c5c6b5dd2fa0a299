import { spawn } from 'child_process';
import * as path from 'path';
import { BatchResult } from './batch';

/**
 * Declares jest tests that run seeds `from..to` on clusters of `nodes` founding voters, in
 * chunks so that a failure names a small range. Each chunk must keep every invariant and
 * recover; it must also have exercised the cluster (elections, snapshots, membership
 * changes, reads), so a simulator that quietly stops injecting anything fails too.
 *
 * The seeds run in a child Node process, not in jest's sandbox: inside jest's vm context
 * every lookup of a global (Math.imul, Uint8Array, ...) costs some 200 ns, which makes the
 * core and the simulator four times slower. The child transpiles the same TypeScript
 * sources on the fly, so no build is needed, and reports its totals as one JSON line.
 */
export function describeSeeds(nodes: number, from: number, to: number, chunk = 200): void {
  describe(`${nodes}-node clusters, seeds ${from}..${to}`, () => {
    for (let a = from; a <= to; a += chunk) {
      const b = Math.min(to, a + chunk - 1);
      test(`seeds ${a}..${b} keep every safety property and recover after healing`, async () => {
        const r = await runInChild(nodes, a, b);
        expect(r.failures).toEqual([]);
        expect(r.runs).toBe(b - a + 1);
        expect(r.leaders).toBeGreaterThan(2 * r.runs);
        expect(r.snapshotsSent).toBeGreaterThan(0);
        expect(r.confChanges).toBeGreaterThan(r.runs);
        expect(r.readsServed).toBeGreaterThan(10 * r.runs);
      });
    }
  });
}

function runInChild(nodes: number, from: number, to: number): Promise<BatchResult> {
  const script = `
    const ts = require(${JSON.stringify(require.resolve('typescript'))});
    const fs = require('fs');
    const compilerOptions = { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, inlineSourceMap: true };
    require.extensions['.ts'] = (m, file) =>
      m._compile(ts.transpileModule(fs.readFileSync(file, 'utf8'), { fileName: file, compilerOptions }).outputText, file);
    const { runSeedRange } = require(${JSON.stringify(path.join(__dirname, 'batch.ts'))});
    process.stdout.write(JSON.stringify(runSeedRange(${nodes}, ${from}, ${to})));
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--enable-source-maps', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`the simulator process for seeds ${from}..${to} exited with ${code}:\n${err}`));
      else resolve(JSON.parse(out) as BatchResult);
    });
  });
}
