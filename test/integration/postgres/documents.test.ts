/**
 * Every pgraft SQL statement of the operator documents (shared/seeds 000 and 002) runs as
 * written: the ```sql blocks, the inline `SELECT ...` / `pgraft_...()` snippets and the
 * statements given to `psql -c` in shell examples, in the order the documents give them,
 * against a one-node cluster (the fake agent).
 */
import { existsSync, readFileSync } from 'fs';
import * as path from 'path';
import { Harness, startHarness } from './harness';

const SEEDS = path.resolve(__dirname, '..', '..', '..', '..', 'shared', 'seeds');
const DOCUMENTS = ['000_882cdbe6fa8c25c3.txt', '002_b15ddfd82f8dcef7.txt'];

/** The pgraft statements of a document, in order. */
function pgraftStatements(markdown: string): string[] {
  const statements: string[] = [];
  const places = /```sql\n([\s\S]*?)```|`([^`\n]+)`|psql[^\n]* -c "([^"]+)"/g;
  for (const [, block, inline, psqlArg] of markdown.matchAll(places)) {
    if (block !== undefined) {
      for (const s of block.replace(/--[^\n]*/g, '').split(';')) {
        // A block may also hold shell lines (e.g. "pg_ctl stop" in the removal steps).
        if (/\bpgraft/.test(s) && /^\s*(SELECT|CREATE|ALTER)\b/i.test(s)) statements.push(s.trim());
      }
      continue;
    }
    const snippet = (inline ?? psqlArg).trim().replace(/;$/, '');
    if (/\bpgraft_\w+\(/.test(snippet)) statements.push(/^SELECT\b/i.test(snippet) ? snippet : `SELECT ${snippet}`);
  }
  return statements;
}

const present = existsSync(SEEDS);
if (!present) console.warn(`operator documents not found at ${SEEDS}; their statements are not checked`);
const describeIfPresent = present ? describe : describe.skip;

describeIfPresent('operator documents', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
    // A fresh single-node cluster, as the documents' procedures start from.
    h.fake.nodes = h.fake.nodes.slice(0, 1);
  }, 120_000);

  afterAll(async () => {
    await h?.close();
  });

  test('the documents hold the statements this test expects to find', () => {
    const all = DOCUMENTS.flatMap((d) => pgraftStatements(readFileSync(path.join(SEEDS, d), 'utf8')));
    expect(all).toEqual(expect.arrayContaining([
      'SELECT pgraft_add_node(4, \'192.168.1.14\', 7004)',
      'SELECT pgraft_remove_node(4)',
      'CREATE EXTENSION pgraft',
      'SELECT pgraft_init()',
      "SELECT pgraft_get_worker_state() = 'RUNNING'",
      'SELECT * FROM pgraft_log_get_stats()',
      'SELECT * FROM pgraft_get_cluster_status()', // psql -c in a shell example
    ]));
    expect(all).toHaveLength(30);
  });

  test.each(DOCUMENTS)('%s: every pgraft statement runs as written', async (document) => {
    const statements = pgraftStatements(readFileSync(path.join(SEEDS, document), 'utf8'));
    for (const statement of statements) {
      if (/^CREATE EXTENSION pgraft$/i.test(statement)) {
        // Where the extension is not yet installed (here the agent installed it already).
        await h.sql.query('DROP EXTENSION pgraft');
        await h.sql.query(statement);
        continue;
      }
      try {
        const { rows } = await h.sql.query(statement);
        expect(rows.length).toBeGreaterThanOrEqual(1);
      } catch (err) {
        throw new Error(`${document}: "${statement}" failed: ${(err as Error).message}`);
      }
    }
  });

  test('the health check of the operations guide gives one row of four columns', async () => {
    const { rows } = await h.sql.query(
      `SELECT
    pgraft_is_leader() as is_leader,
    pgraft_get_term() as term,
    pgraft_get_leader() as leader_id,
    pgraft_get_worker_state() as worker`,
    );
    expect(rows).toEqual([{ is_leader: true, term: '3', leader_id: '1', worker: 'RUNNING' }]);
  });
});
