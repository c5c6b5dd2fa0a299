/**
 * The pgraft SQL statements of the operator documents (shared/seeds 000 and 002), as the
 * tests of the SQL surface run them: the ```sql blocks, the inline `SELECT ...` /
 * `pgraft_...()` snippets and the statements given to `psql -c` in shell examples, in the
 * order the documents give them.
 */
import { existsSync, readFileSync } from 'fs';
import * as path from 'path';

export const SEEDS = path.resolve(__dirname, '..', '..', '..', 'shared', 'seeds');
export const DOCUMENTS = ['000_882cdbe6fa8c25c3.txt', '002_b15ddfd82f8dcef7.txt'];

/** Whether the documents are there to be read (they live beside the checkout). */
export function documentsPresent(): boolean {
  const present = existsSync(SEEDS);
  if (!present) console.warn(`operator documents not found at ${SEEDS}; their statements are not checked`);
  return present;
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
