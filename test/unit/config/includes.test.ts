import * as fs from 'fs';
import * as path from 'path';
import { readConfFiles } from '../../../agent/config/conf_files';
import { formatIssue } from '../../../agent/config/issues';
import { useTempDirs } from './tempfiles';

const tempDir = useTempDirs();

/** name -> value as a later line overrides an earlier one. */
function effective(entries: { name: string; value: string }[]): Record<string, string> {
  return Object.fromEntries(entries.map((e) => [e.name, e.value]));
}

describe('include directives', () => {
  it('reads an included file in place, relative to the including file, later lines overriding earlier ones', () => {
    const dir = tempDir({
      'main/postgresql.conf': "pgraft.a = 1\ninclude 'conf/extra.conf'\npgraft.c = 3\n",
      'main/conf/extra.conf': "pgraft.a = 10\npgraft.b = 20\npgraft.c = 30\ninclude 'more.conf'\n",
      'main/conf/more.conf': 'pgraft.d = 4\n',
    });
    const r = readConfFiles([path.join(dir, 'main/postgresql.conf')]);
    expect(r.errors).toEqual([]);
    expect(r.entries.map((e) => `${path.relative(dir, e.file)}:${e.line} ${e.name}=${e.value}`)).toEqual([
      'main/postgresql.conf:1 pgraft.a=1',
      'main/conf/extra.conf:1 pgraft.a=10',
      'main/conf/extra.conf:2 pgraft.b=20',
      'main/conf/extra.conf:3 pgraft.c=30',
      'main/conf/more.conf:1 pgraft.d=4',
      'main/postgresql.conf:3 pgraft.c=3',
    ]);
    expect(effective(r.entries)).toEqual({ 'pgraft.a': '10', 'pgraft.b': '20', 'pgraft.c': '3', 'pgraft.d': '4' });
    expect(r.filesRead.map((f) => path.relative(dir, f))).toEqual(['main/postgresql.conf', 'main/conf/extra.conf', 'main/conf/more.conf']);
  });

  it('accepts directive names in any case and an absolute path', () => {
    const dir = tempDir({ 'abs.conf': 'pgraft.x = 1\n' });
    const main = path.join(dir, 'sub', 'main.conf');
    fs.mkdirSync(path.dirname(main));
    fs.writeFileSync(main, `INCLUDE '${path.join(dir, 'abs.conf')}'\n`);
    expect(effective(readConfFiles([main]).entries)).toEqual({ 'pgraft.x': '1' });
  });

  it('reports a missing include at the line of the directive', () => {
    const dir = tempDir({ 'postgresql.conf': "pgraft.a = 1\n\ninclude 'missing.conf'\n" });
    const r = readConfFiles([path.join(dir, 'postgresql.conf')]);
    expect(r.errors).toHaveLength(1);
    expect(formatIssue(r.errors[0])).toBe(
      `${path.join(dir, 'postgresql.conf')}:3: could not open configuration file "${path.join(dir, 'missing.conf')}": no such file or directory`,
    );
    expect(r.entries).toHaveLength(1);
  });

  it('skips a missing include_if_exists file without complaint', () => {
    const dir = tempDir({ 'postgresql.conf': "include_if_exists 'local.conf'\npgraft.a = 1\n" });
    const r = readConfFiles([path.join(dir, 'postgresql.conf')]);
    expect(r.errors).toEqual([]);
    expect(effective(r.entries)).toEqual({ 'pgraft.a': '1' });

    fs.writeFileSync(path.join(dir, 'local.conf'), 'pgraft.a = 2\npgraft.b = 3\n');
    expect(effective(readConfFiles([path.join(dir, 'postgresql.conf')]).entries)).toEqual({ 'pgraft.a': '1', 'pgraft.b': '3' });
  });

  it('reads an include_dir in byte order of names, only *.conf files not starting with a dot', () => {
    const dir = tempDir({
      'postgresql.conf': "include_dir 'conf.d'\n",
      'conf.d/20-b.conf': 'pgraft.order = b\n',
      'conf.d/10-a.conf': 'pgraft.order = a\npgraft.a = 1\n',
      'conf.d/Z-upper.conf': 'pgraft.order = Z\n', // byte order: digits, then upper case, then lower case
      'conf.d/a-lower.conf': 'pgraft.order = lower\n',
      'conf.d/.hidden.conf': 'pgraft.hidden = 1\n',
      'conf.d/notes.txt': 'pgraft.txt = 1\n',
      'conf.d/backup.conf~': 'pgraft.backup = 1\n',
      'conf.d/x.conf/inner.conf': 'pgraft.inner = 1\n', // a directory named *.conf is not read
    });
    const r = readConfFiles([path.join(dir, 'postgresql.conf')]);
    expect(r.errors).toEqual([]);
    expect(r.entries.filter((e) => e.name === 'pgraft.order').map((e) => e.value)).toEqual(['a', 'b', 'Z', 'lower']);
    expect(Object.keys(effective(r.entries)).sort()).toEqual(['pgraft.a', 'pgraft.order']);
  });

  it('reports a missing include_dir', () => {
    const dir = tempDir({ 'postgresql.conf': "include_dir 'nope'\n" });
    const r = readConfFiles([path.join(dir, 'postgresql.conf')]);
    expect(r.errors.map(formatIssue)).toEqual([
      `${path.join(dir, 'postgresql.conf')}:1: could not open configuration directory "${path.join(dir, 'nope')}": no such file or directory`,
    ]);
  });

  it('detects an include cycle and names the files that form it', () => {
    const dir = tempDir({
      'postgresql.conf': "pgraft.a = 1\ninclude 'b.conf'\n",
      'b.conf': "pgraft.b = 1\ninclude 'c.conf'\n",
      'c.conf': "include 'b.conf'\npgraft.c = 1\n",
    });
    const r = readConfFiles([path.join(dir, 'postgresql.conf')]);
    expect(r.errors).toHaveLength(1);
    const real = (f: string) => fs.realpathSync(path.join(dir, f));
    expect(r.errors[0].source).toEqual({ kind: 'file', file: path.join(dir, 'c.conf'), line: 1 });
    expect(r.errors[0].message).toBe(`configuration files include each other in a cycle: ${real('b.conf')} -> ${real('c.conf')} -> ${real('b.conf')}`);
    // Everything outside the cycle is still read.
    expect(Object.keys(effective(r.entries)).sort()).toEqual(['pgraft.a', 'pgraft.b', 'pgraft.c']);
  });

  it('detects a file including itself, also through include_dir', () => {
    const dir = tempDir({ 'conf.d/self.conf': "include_dir '.'\n", 'postgresql.conf': "include_dir 'conf.d'\n" });
    const r = readConfFiles([path.join(dir, 'postgresql.conf')]);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0].message).toMatch(/cycle: .*self\.conf -> .*self\.conf$/);
  });

  it('allows the same file to be included twice when it is not a cycle', () => {
    const dir = tempDir({ 'postgresql.conf': "include 'common.conf'\npgraft.a = 2\ninclude 'common.conf'\n", 'common.conf': 'pgraft.a = 1\n' });
    const r = readConfFiles([path.join(dir, 'postgresql.conf')]);
    expect(r.errors).toEqual([]);
    expect(effective(r.entries)).toEqual({ 'pgraft.a': '1' });
  });

  it('stops at a nesting depth of 10', () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 12; i++) files[`f${i}.conf`] = `include 'f${i + 1}.conf'\n`;
    files['f12.conf'] = 'pgraft.deep = 1\n';
    const dir = tempDir(files);
    const r = readConfFiles([path.join(dir, 'f0.conf')]);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0].message).toMatch(/nested more than 10 deep/);
    expect(r.entries).toEqual([]);
  });

  it('rejects an empty include file name', () => {
    const dir = tempDir({ 'postgresql.conf': "include ''\n" });
    expect(readConfFiles([path.join(dir, 'postgresql.conf')]).errors[0].message).toBe('empty configuration file name: ""');
  });

  it('reports syntax errors of an included file at its own lines, and the rest of both files is read', () => {
    const dir = tempDir({ 'postgresql.conf': "include 'inc.conf'\npgraft.after = 1\n", 'inc.conf': 'pgraft.ok = 1\npgraft.bad = 10.0.0.1\n' });
    const r = readConfFiles([path.join(dir, 'postgresql.conf')]);
    expect(r.errors.map(formatIssue)).toEqual([expect.stringMatching(new RegExp(`^${path.join(dir, 'inc.conf')}:2: syntax error near "\\.0"`))]);
    expect(Object.keys(effective(r.entries))).toEqual(['pgraft.ok', 'pgraft.after']);
  });

  it('an optional top-level file may be missing; a required one may not', () => {
    const dir = tempDir({ 'postgresql.conf': 'pgraft.a = 1\n' });
    const ok = readConfFiles([path.join(dir, 'postgresql.conf'), { path: path.join(dir, 'postgresql.auto.conf'), optional: true }]);
    expect(ok.errors).toEqual([]);
    const bad = readConfFiles([path.join(dir, 'nope.conf')]);
    expect(bad.errors).toHaveLength(1);
    expect(bad.errors[0].source).toBeUndefined();
    expect(bad.errors[0].message).toMatch(/could not open configuration file .*nope\.conf": no such file or directory/);
    expect(bad.errors[0].hint).toMatch(/--config/);
  });
});
