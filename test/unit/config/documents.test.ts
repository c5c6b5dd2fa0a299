/**
 * Every pgraft.* setting shown in the operator documents must work as written. The lines are
 * taken from the documents by this test, so it follows them. The documents are kept as
 * fixtures (fixtures/seeds); where the shared originals are present, the copies must match.
 */
import * as fs from 'fs';
import * as path from 'path';
import { evaluateConfig, LoadOutcome, SETTINGS, SettingName } from '../../../agent/config';
import { useTempDirs } from './tempfiles';

const tempDir = useTempDirs();

const DOCUMENTS = ['000_882cdbe6fa8c25c3.txt', '002_b15ddfd82f8dcef7.txt'];
const FIXTURES = path.join(__dirname, 'fixtures', 'seeds');
// The operator documents themselves, beside the checkout (as on developer machines and in CI).
const SHARED = path.resolve(__dirname, '..', '..', '..', '..', 'shared', 'seeds');

const text = (doc: string) => fs.readFileSync(path.join(FIXTURES, doc), 'utf8');

interface DocLine {
  doc: string;
  lineNo: number;
  line: string;
}

function settingLines(): DocLine[] {
  return DOCUMENTS.flatMap((doc) =>
    text(doc)
      .split('\n')
      .map((line, i) => ({ doc, lineNo: i + 1, line }))
      .filter((l) => /^\s*pgraft\.\w+(\s*=|\s)/i.test(l.line)),
  );
}

/** The ```ini blocks: postgresql.conf snippets, with pgraft.* settings or PostgreSQL's own. */
function iniBlocks(): { doc: string; lineNo: number; body: string }[] {
  const blocks: { doc: string; lineNo: number; body: string }[] = [];
  for (const doc of DOCUMENTS) {
    const re = /```ini\n([\s\S]*?)```/g;
    const all = text(doc);
    for (let m = re.exec(all); m; m = re.exec(all)) {
      blocks.push({ doc, lineNo: all.slice(0, m.index).split('\n').length, body: m[1] });
    }
  }
  return blocks;
}

/** A base file with what every agent needs and the documents' snippets leave out, then the snippet. */
function loadSnippet(snippet: string): LoadOutcome {
  const dir = tempDir({ 'base.conf': "pgraft.node_id = 1\npgraft.data_dir = '/var/lib/postgresql/pgraft'\n", 'snippet.conf': snippet });
  return evaluateConfig({ files: [path.join(dir, 'base.conf'), path.join(dir, 'snippet.conf')], env: {} });
}

/** What the line's value means, read independently of the parser: numbers, true/false, quoted text. */
function expected(value: string): unknown {
  const v = value.replace(/#.*$/, '').trim();
  if (/^'.*'$/.test(v)) return v.slice(1, -1);
  if (v === 'true' || v === 'false') return v === 'true';
  return Number(v);
}

describe('settings shown in the operator documents', () => {
  const lines = settingLines();

  (fs.existsSync(SHARED) ? it : it.skip)('are tested against current copies of the documents', () => {
    for (const doc of DOCUMENTS) expect(text(doc)).toBe(fs.readFileSync(path.join(SHARED, doc), 'utf8'));
  });

  it('are found in the documents', () => {
    expect(lines.length).toBeGreaterThanOrEqual(35);
    expect(iniBlocks().length).toBeGreaterThanOrEqual(11);
  });

  it.each(lines.map((l) => [`${l.doc}:${l.lineNo}`, l.line] as const))('%s  %s  loads with the value it shows', (_, line) => {
    const outcome = loadSnippet(`${line}\n`);
    if (!outcome.ok) throw new Error(outcome.errors.map((e) => e.message).join('\n'));
    const m = /^\s*pgraft\.(\w+)\s*=?\s*(.*)$/.exec(line);
    const name = m![1] as SettingName;
    expect(Object.keys(SETTINGS)).toContain(name);
    expect(outcome.loaded.config[name]).toEqual(expected(m![2]));
  });

  it.each(iniBlocks().map((b) => [`${b.doc}:${b.lineNo}`, b.body] as const))('the block at %s loads as a whole', (_, body) => {
    const outcome = loadSnippet(body);
    expect(outcome.ok ? [] : outcome.errors.map((e) => e.message)).toEqual([]);
  });

  it('the production example of the best practices loads exactly, without warnings', () => {
    const block = iniBlocks().find((b) => b.body.includes('Production Node 1'));
    expect(block).toBeDefined();
    const dir = tempDir({ 'postgresql.conf': block!.body });
    const outcome = evaluateConfig({ files: [path.join(dir, 'postgresql.conf')], env: {} });
    if (!outcome.ok) throw new Error(outcome.errors.map((e) => e.message).join('\n'));
    expect(outcome.loaded.warnings).toEqual([]);
    expect(outcome.loaded.config).toMatchObject({
      cluster_id: 'production-cluster',
      node_id: 1,
      address: '10.0.1.11',
      port: 7001,
      data_dir: '/var/lib/postgresql/pgraft',
      election_timeout: 1000,
      heartbeat_interval: 100,
      snapshot_interval: 10000,
      max_log_entries: 1000,
      batch_size: 100,
      max_batch_delay: 10,
      compaction_threshold: 10000,
      metrics_enabled: true,
      metrics_port: 9100,
    });
  });

  it('the tuning pairs of the operations guide keep election_timeout at 10 × heartbeat_interval, so they load without warnings', () => {
    const pairs = iniBlocks().filter((b) => /election_timeout/.test(b.body) && /heartbeat_interval/.test(b.body));
    expect(pairs.length).toBeGreaterThanOrEqual(3);
    for (const b of pairs) {
      const outcome = loadSnippet(b.body);
      expect(outcome.ok && outcome.loaded.warnings).toEqual([]);
    }
  });
});
