import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { withResponseHidden } from '../../../agent/postgres/pg_driver';
import { REPO, assertBuilt } from '../../support/agents';

/** Runs `script` in a fresh node (nothing loaded yet) from the checkout; returns its JSON answer. */
function inFreshNode(script: string): Record<string, unknown> {
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: REPO, encoding: 'utf8' })) as Record<string, unknown>;
}

const REPORT = `
const loaded = (m) => process.moduleLoadList.includes('NativeModule ' + m);
const report = () => ({ undici: loaded('internal/deps/undici/undici'), http2: loaded('http2'), response: typeof Response });`;

describe('loading pg', () => {
  test('does not load the fetch implementation, and leaves Response as it was', () => {
    assertBuilt();
    const driver = path.join(REPO, 'dist', 'agent', 'postgres', 'pg_driver.js');
    const got = inFreshNode(`${REPORT}
      const d = require(${JSON.stringify(driver)});
      const before = report();
      const client = new d.Client({ host: '127.0.0.1' });
      const works = new Response('ok').status;
      console.log(JSON.stringify({ ...before, client: client.constructor.name, subscriber: typeof d.createSubscriber, works }));`);
    expect(got).toEqual({ undici: false, http2: false, response: 'function', client: 'Client', subscriber: 'function', works: 200 });
  });

  test('pg loaded directly does load it, in this node: what the loader saves', () => {
    const got = inFreshNode(`${REPORT} require('pg'); console.log(JSON.stringify(report()));`);
    // Node 21 and later define navigator.userAgent, and pg then skips the probe by itself.
    const probes = Number(process.versions.node.split('.')[0]) < 21;
    expect(got).toEqual({ undici: probes, http2: probes, response: 'function' });
  });

  test('withResponseHidden hides Response while loading only, even when loading throws', () => {
    const seen: string[] = [];
    expect(withResponseHidden(() => typeof Response)).toBe('undefined');
    expect(() =>
      withResponseHidden(() => {
        seen.push(typeof Response);
        throw new Error('load failed');
      }),
    ).toThrow('load failed');
    expect(seen).toEqual(['undefined']);
    expect(typeof Response).toBe('function');
  });
});
