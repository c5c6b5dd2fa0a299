/**
 * Every pgraft SQL statement of the operator documents (shared/seeds 000 and 002) runs as
 * written: the ```sql blocks, the inline `SELECT ...` / `pgraft_...()` snippets and the
 * statements given to `psql -c` in shell examples, in the order the documents give them,
 * against a one-node cluster (the fake agent).
 */
import { DOCUMENTS, documentStatements, documentsPresent } from '../../support/documents';
import { Harness, startHarness } from './harness';

const describeIfPresent = documentsPresent() ? describe : describe.skip;

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
    const all = DOCUMENTS.flatMap(documentStatements);
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
    const statements = documentStatements(document);
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
