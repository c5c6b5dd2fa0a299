/**
 * The pgraft SQL statements of the operator documents (shared/seeds 000 and 002), as the
 * tests of the SQL surface run them: the ```sql blocks, the inline `SELECT ...` /
 * `pgraft_...()` snippets and the statements given to `psql -c` in shell examples, in the
 * order the documents give them.
 */
import { existsSync, readFileSync } from 'fs';
import * as path from 'path';

const BESIDE_CHECKOUT = path.resolve(__dirname, '..', '..', '..', 'shared', 'seeds');
/** The copies kept in the repository (test/unit/config/documents.test.ts checks they match). */
const IN_REPOSITORY = path.resolve(__dirname, '..', 'unit', 'config', 'fixtures', 'seeds');

/** The operator documents: beside the checkout when there, else the repository's copies. */
export const SEEDS = existsSync(BESIDE_CHECKOUT) ? BESIDE_CHECKOUT : IN_REPOSITORY;
export const DOCUMENTS = ['000_882cdbe6fa8c25c3.txt', '002_b15ddfd82f8dcef7.txt'];

/** Always true now that the repository carries copies; kept for the suites that ask. */
export function documentsPresent(): boolean {
  return DOCUMENTS.every((d) => existsSync(path.join(SEEDS, d)));
}

/** The pgraft statements of a document's text, in order. */
export function pgraftStatements(markdown: string): string[] {
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

/** The pgraft statements of one of DOCUMENTS. */
export function documentStatements(document: string): string[] {
  return pgraftStatements(readFileSync(path.join(SEEDS, document), 'utf8'));
}
