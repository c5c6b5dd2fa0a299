import { parseConfText, unquote } from '../../../agent/config/conf_syntax';

/** The single value of a one-line file, or its syntax error. */
function read(line: string): string {
  const r = parseConfText(`${line}\n`);
  if (r.errors.length > 0) return `ERROR ${r.errors[0].message}`;
  expect(r.items).toHaveLength(1);
  return r.items[0].value;
}

describe('postgresql.conf syntax', () => {
  it('reads name = value and name value, skipping comments and blank lines', () => {
    const r = parseConfText(
      [
        '# a comment',
        '',
        'pgraft.node_id = 1',
        "pgraft.address '10.0.1.11'   # trailing comment",
        '   pgraft.port=7001',
        'shared_buffers = 4GB',
        "pgraft.cluster_id = 'production-cluster'# comment right after",
      ].join('\n'),
    );
    expect(r.errors).toEqual([]);
    expect(r.items).toEqual([
      { name: 'pgraft.node_id', value: '1', line: 3 },
      { name: 'pgraft.address', value: '10.0.1.11', line: 4 },
      { name: 'pgraft.port', value: '7001', line: 5 },
      { name: 'shared_buffers', value: '4GB', line: 6 },
      { name: 'pgraft.cluster_id', value: 'production-cluster', line: 7 },
    ]);
  });

  it('accepts a last line without newline and CRLF line endings', () => {
    expect(parseConfText('a = 1\r\nb = 2').items).toEqual([
      { name: 'a', value: '1', line: 1 },
      { name: 'b', value: '2', line: 2 },
    ]);
  });

  it("resolves '' and backslash escapes in quoted strings", () => {
    expect(read("pgraft.x = 'it''s'")).toBe("it's");
    expect(read("pgraft.x = 'a''''b'")).toBe("a''b");
    expect(read("pgraft.x = 'say \\'hi\\''")).toBe("say 'hi'");
    expect(read("pgraft.x = 'tab\\there\\nnew'")).toBe('tab\there\nnew');
    expect(read("pgraft.x = 'back\\\\'")).toBe('back\\');
    expect(read("pgraft.x = '\\101\\x'")).toBe('Ax'); // octal byte; other escapes stand for the character
    expect(read("pgraft.x = 'oct\\0101'")).toBe('oct\b1'); // at most three octal digits
    expect(read("pgraft.x = 'has # inside'")).toBe('has # inside');
    expect(read("pgraft.x = ''")).toBe('');
  });

  it('decodes UTF-8 in values and names', () => {
    expect(read("pgraft.x = 'ümlaut'")).toBe('ümlaut');
    expect(read('pgraft.x = é')).toBe('é');
    expect(unquote("'caf\\303\\251'")).toBe('caf\xc3\xa9'); // bytes, decoded by parseConfText
    expect(read("pgraft.x = 'caf\\303\\251'")).toBe('café');
  });

  // Each expectation below is what PostgreSQL 15 itself reports for the line.
  it.each([
    ['pgraft.x = 5min', '5min'],
    ['pgraft.x = +1', '+1'],
    ['pgraft.x = -0x1Fab', '-0x1Fab'],
    ['pgraft.x = true#c', 'true'],
    ['pgraft.x = node1.example.com', 'node1.example.com'],
    ['pgraft.x = a.b.c', 'a.b.c'],
    ['pgraft.x = a:b/c-d', 'a:b/c-d'],
    ['pgraft.x = _a-b', '_a-b'],
    ['pgraft.x = .5', '.5'],
    ['pgraft.x = .', '.'],
    ['pgraft.x = 0x', '0x'],
    ["pgraft.x 'val'", 'val'],
    ['PGRAFT.C = on', 'on'],
  ])('reads %s as PostgreSQL does', (line, value) => {
    expect(read(line)).toBe(value);
  });

  it.each([
    ['pgraft.x = a.b', 'near "a.b"'], // a qualified name is not a value
    ['pgraft.x = 1.5s', 'near "s"'],
    ['pgraft.x = 10.0.1.11', 'near ".1"'],
    ['pgraft.x = 0X1F', 'near "1F"'],
    ["pgraft.x = 'abc", `near "'"`],
    ['pgraft.x = 1 2', 'near "2"'],
    ['pgraft.x =', 'at end of line'],
    ['pgraft.x = /var/lib', 'near "/"'],
    ["pgraft.x = 'a\\'", `near "'"`],
    ['pgraft.x = 1e5', 'near "5"'],
    ['pgraft.x==1', 'near "="'],
    ['pgraft.x = 1.2.3', 'near ".3"'],
    ["pgraft.x = 'x'y", 'near "y"'],
    ['pgraft.x = 12abc34', 'near "34"'],
    ['pgraft.x = -', 'near "-"'],
    ['= 1', 'near "="'],
  ])('rejects %s as PostgreSQL does', (line, near) => {
    expect(read(line)).toBe(`ERROR syntax error ${near}`);
  });

  it('reports every syntax error with its line and keeps the good lines', () => {
    const r = parseConfText(['pgraft.a = 1', 'pgraft.b = 10.0.0.1', 'pgraft.c = 3', 'pgraft.d', 'pgraft.e = 5'].join('\n'));
    expect(r.errors).toEqual([
      { line: 2, message: 'syntax error near ".0"' },
      { line: 4, message: 'syntax error at end of line' },
    ]);
    expect(r.items.map((i) => i.name)).toEqual(['pgraft.a', 'pgraft.c', 'pgraft.e']);
  });

  it('gives up on a file after 100 syntax errors, as PostgreSQL does', () => {
    const r = parseConfText('x = 1 2\n'.repeat(150));
    expect(r.errors).toHaveLength(100);
  });
});
