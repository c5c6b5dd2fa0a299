/**
 * What the tests of the SQL control surface share: a throwaway PostgreSQL with the
 * extension files installed, a FakeControlPlane behind a real PostgresBridge, and helpers
 * to expect SQL errors and to wait for conditions with a deadline.
 */
import * as path from 'path';
import type { Client, DatabaseError } from 'pg';
import { PostgresBridge } from '../../../agent/postgres/bridge';
import { installExtensionFiles } from '../../../agent/postgres/install';
import { FakeControlPlane } from '../../support/fake_control_plane';
import { StartOptions, TestPostgres } from '../../support/postgres';

export interface Harness {
  pg: TestPostgres;
  fake: FakeControlPlane;
  bridge: PostgresBridge;
  /** A superuser session (the operator's psql). */
  sql: Client;
  /** Replace the bridge by a new one over the same fake (e.g. after stopping it). */
  restartBridge(): Promise<void>;
  close(): Promise<void>;
}

/** Publish often so tests that wait for STOPPED or RUNNING wait little. */
export const PUBLISH_MS = 100;

let installed: Promise<string> | null = null;

/** Install sql/ and migrations/ into the test server's extension folder, once per process. */
export function installExtension(pg: TestPostgres): Promise<string> {
  installed ??= installExtensionFiles(path.join(pg.binDir, 'pg_config'));
  return installed;
}

export async function startHarness(options: StartOptions = {}): Promise<Harness> {
  const pg = await TestPostgres.start({ conf: ['pgraft.node_id = 1'], ...options });
  try {
    await installExtension(pg);
    const fake = new FakeControlPlane();
    const newBridge = () =>
      new PostgresBridge({
        conninfo: pg.conninfo(),
        control: fake,
        status: () => fake.status(),
        publishIntervalMs: PUBLISH_MS,
      });
    const h: Harness = {
      pg,
      fake,
      bridge: newBridge(),
      sql: null as unknown as Client,
      async restartBridge() {
        await h.bridge.stop();
        h.bridge = newBridge();
        await h.bridge.start();
      },
      async close() {
        await h.sql?.end().catch(() => undefined);
        await h.bridge.stop().catch(() => undefined);
        await pg.stop();
      },
    };
    await h.bridge.start();
    h.sql = await pg.connect();
    return h;
  } catch (err) {
    await pg.stop();
    throw err;
  }
}

/** Expect a statement to fail with this SQLSTATE (and message/hint when given). */
export async function expectSqlError(
  run: Promise<unknown>,
  want: { code: string; message?: RegExp; hint?: RegExp; detail?: RegExp },
): Promise<DatabaseError> {
  let err: DatabaseError;
  try {
    await run;
  } catch (e) {
    err = e as DatabaseError;
    expect({ code: err.code, message: err.message }).toEqual({ code: want.code, message: expect.stringMatching(want.message ?? /.*/) });
    if (want.hint) expect(err.hint).toMatch(want.hint);
    if (want.detail) expect(err.detail).toMatch(want.detail);
    return err;
  }
  throw new Error(`expected an error with SQLSTATE ${want.code}, but the statement succeeded`);
}

/** Poll `check` until it returns true; fail after `timeoutMs`. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await check()) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** One value of a one-row, one-column query. */
export async function value<T = unknown>(sql: Client, text: string, params?: unknown[]): Promise<T> {
  const { rows } = await sql.query(text, params);
  return Object.values(rows[0])[0] as T;
}
