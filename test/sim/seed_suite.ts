import { spawn } from 'child_process';
import * as path from 'path';
import { BatchResult } from './batch';
import { isKnown, KNOWN_FAILURES, parseFailure } from './known_failures';

/**
 * Declares jest tests that run seeds `from..to` on clusters of `nodes` founding voters, in
 * chunks so that a failure names a small range. Each chunk must keep every invariant and
 * recover (but for the seeds of known_failures.ts, which must fail as listed); it must also
 * have exercised the cluster (elections, snapshots, membership changes, reads, the agent
 * loop, Figure 8 faults), so a simulator that quietly stops injecting anything fails too.
 *
 * The seeds run in a child Node process, not in jest's sandbox: inside jest's vm context
 * every lookup of a global (Math.imul, Uint8Array, ...) costs some 200 ns, which makes the
 * core and the simulator four times slower. The child transpiles the same TypeScript
 * sources on the fly, so no build is needed, and reports the totals of each chunk as one
 * JSON line. One child serves all the chunks of a call: starting one (loading and running
 * the TypeScript compiler) takes about two seconds.
 */
export function describeSeeds(nodes: number, from: number, to: number, chunk = 200): void {
  describe(`${nodes}-node clusters, seeds ${from}..${to}`, () => {
    let results: Promise<BatchResult>[] | null = null;
    for (let a = from, i = 0; a <= to; a += chunk, i++) {
      const b = Math.min(to, a + chunk - 1);
      test(`seeds ${a}..${b} keep every safety property and recover after healing`, async () => {
        results ??= runInChild(nodes, from, to, chunk);
        const r = await results[i];
        expect(r.failures.filter((line) => !isKnown(parseFailure(line)!))).toEqual([]);
        const failed = r.failures.map((line) => parseFailure(line)!.seed);
        const fixed = KNOWN_FAILURES.filter((k) => k.nodes === nodes && k.seed >= a && k.seed <= b && !failed.includes(k.seed));
        expect(fixed.map((k) => `seed ${k.seed} (${nodes} nodes) no longer fails: remove it from known_failures.ts`)).toEqual([]);
        expect(r.runs).toBe(b - a + 1);
        expect(r.leaders).toBeGreaterThan(2 * r.runs);
        expect(r.snapshotsSent).toBeGreaterThan(0);
        expect(r.confChanges).toBeGreaterThan(r.runs);
        expect(r.readsServed).toBeGreaterThan(10 * r.runs);
        // About half the runs drive their nodes as the agent does, and those overlap writes
        // with sending and with stepping the core.
        expect(r.agentRuns).toBeGreaterThan(r.runs / 4);
        expect(r.sentBeforeWrite).toBeGreaterThan(10 * r.agentRuns);
        expect(r.steppedWhileWriting).toBeGreaterThan(10 * r.agentRuns);
        expect(r.figure8Isolations).toBeGreaterThan(0);
      });
    }
  });
}

/**
 * Runs seeds from..to in chunks of `chunk` seeds in one child process: one promise per chunk,
 * settled as soon as that chunk's line arrives.
 */
function runInChild(nodes: number, from: number, to: number, chunk: number): Promise<BatchResult>[] {
  const script = `
    const ts = require(${JSON.stringify(require.resolve('typescript'))});
    const fs = require('fs');
    const compilerOptions = { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, inlineSourceMap: true };
    require.extensions['.ts'] = (m, file) =>
      m._compile(ts.transpileModule(fs.readFileSync(file, 'utf8'), { fileName: file, compilerOptions }).outputText, file);
    const { runSeedRange } = require(${JSON.stringify(path.join(__dirname, 'batch.ts'))});
    for (let a = ${from}; a <= ${to}; a += ${chunk}) {
      process.stdout.write(JSON.stringify(runSeedRange(${nodes}, a, Math.min(${to}, a + ${chunk} - 1))) + '\\n');
    }
  `;
  const settle: { resolve(r: BatchResult): void; reject(e: Error): void }[] = [];
  const results: Promise<BatchResult>[] = [];
  for (let a = from; a <= to; a += chunk) {
    const p = new Promise<BatchResult>((resolve, reject) => settle.push({ resolve, reject }));
    p.catch(() => undefined); // a crash rejects every later chunk; each test reports its own
    results.push(p);
  }
  let done = 0;
  const fail = (e: Error): void => {
    for (const s of settle.slice(done)) s.reject(e);
    done = settle.length;
  };
  const child = spawn(process.execPath, ['--enable-source-maps', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    for (let nl = out.indexOf('\n'); nl >= 0 && done < settle.length; nl = out.indexOf('\n')) {
      settle[done++].resolve(JSON.parse(out.slice(0, nl)) as BatchResult);
      out = out.slice(nl + 1);
    }
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.on('error', fail);
  child.on('close', (code) => {
    if (done < settle.length) fail(new Error(`the simulator process for seeds ${from}..${to} exited with ${code} after ${done} chunks:\n${err}`));
  });
  return results;
}
