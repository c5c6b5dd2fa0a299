/**
 * The postgresql.conf file syntax, read exactly as PostgreSQL reads it
 * (src/backend/utils/misc/guc-file.l): one `name = value` or `name value` per line, `#`
 * comments anywhere, single-quoted strings with '' and backslash escapes, unquoted values
 * limited to the scanner's token classes. The text is scanned as bytes, like the C scanner
 * does (bytes 0x80-0xFF count as letters), and values are decoded as UTF-8 afterwards.
 *
 * This file knows nothing of includes or of settings: it turns one file's text into
 * (name, value, line) items, include directives among them, plus its syntax errors.
 */

export interface ConfItem {
  /** The name as written (PostgreSQL compares names case-insensitively). */
  readonly name: string;
  /** The value with quotes and escapes removed. */
  readonly value: string;
  readonly line: number;
}

export interface ConfSyntaxError {
  readonly line: number;
  readonly message: string;
}

export interface ConfText {
  readonly items: ConfItem[];
  readonly errors: ConfSyntaxError[];
}

type TokenKind = 'EOL' | 'EOF' | 'ID' | 'QUALIFIED_ID' | 'STRING' | 'UNQUOTED_STRING' | 'INTEGER' | 'REAL' | 'EQUALS' | 'ERROR';

interface Token {
  readonly kind: TokenKind;
  /** The token's bytes, one character per byte (latin1). */
  readonly text: string;
  readonly line: number;
}

const LETTER = 'A-Za-z_\\x80-\\xff';
const LETTER_OR_DIGIT = 'A-Za-z_0-9\\x80-\\xff';
const ID = `[${LETTER}][${LETTER_OR_DIGIT}]*`;

/**
 * The scanner's rules in guc-file.l order. Like flex, the longest match wins and a tie goes
 * to the rule listed first (so `pgraft.node_id` is a QUALIFIED_ID, not an UNQUOTED_STRING).
 * Each pattern on its own is written so that JavaScript's greedy match is its longest match.
 */
const RULES: ReadonlyArray<readonly [TokenKind, RegExp]> = [
  ['ID', new RegExp(ID, 'y')],
  ['QUALIFIED_ID', new RegExp(`${ID}\\.${ID}`, 'y')],
  ['STRING', /'(?:[^'\\\n]|\\[^\n]|'')*'/y],
  ['UNQUOTED_STRING', new RegExp(`[${LETTER}](?:[${LETTER_OR_DIGIT}]|[-._:/])*`, 'y')],
  // {SIGN}?({DIGIT}+|0x{HEXDIGIT}+){UNIT_LETTER}*: hex first, as it is the longer reading of "0x1F".
  ['INTEGER', /[-+]?(?:0x[0-9a-fA-F]+|[0-9]+)[a-zA-Z]*/y],
  ['REAL', /[-+]?[0-9]*\.[0-9]*(?:[Ee][-+]?[0-9]+)?/y],
  ['EQUALS', /=/y],
];

const SKIP = /(?:[ \t\r]+|#[^\n]*)+/y;

/** PostgreSQL gives up on a file after this many syntax errors (guc-file.l). */
const MAX_SYNTAX_ERRORS = 100;

class Scanner {
  private pos = 0;
  private line = 1;

  constructor(private readonly src: string) {}

  next(): Token {
    SKIP.lastIndex = this.pos;
    if (SKIP.test(this.src)) this.pos = SKIP.lastIndex;
    const line = this.line;
    if (this.pos >= this.src.length) return { kind: 'EOF', text: '', line };
    if (this.src[this.pos] === '\n') {
      this.pos++;
      this.line++;
      return { kind: 'EOL', text: '\n', line };
    }
    let best: Token | null = null;
    for (const [kind, re] of RULES) {
      re.lastIndex = this.pos;
      const m = re.exec(this.src);
      if (m && (best === null || m[0].length > best.text.length)) best = { kind, text: m[0], line };
    }
    // flex's catch-all `.`: one byte that starts no token.
    const token = best ?? { kind: 'ERROR', text: this.src[this.pos], line };
    this.pos += token.text.length;
    return token;
  }
}

const VALUE_KINDS: ReadonlySet<TokenKind> = new Set(['ID', 'STRING', 'INTEGER', 'REAL', 'UNQUOTED_STRING']);

/** Bytes (one character each) to the string they encode in UTF-8. */
function decode(bytes: string): string {
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

const SIMPLE_ESCAPES: ReadonlyMap<string, string> = new Map([
  ['b', '\b'],
  ['f', '\f'],
  ['n', '\n'],
  ['r', '\r'],
  ['t', '\t'],
]);

/**
 * Strips the quotes of a STRING token and resolves its escapes as DeescapeQuotedString does:
 * \b \f \n \r \t, up to three octal digits giving one byte, any other escaped character
 * stands for itself, and '' is one quote.
 */
export function unquote(token: string): string {
  const s = token.slice(1, -1);
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && i + 1 < s.length) {
      const e = s[++i];
      const simple = SIMPLE_ESCAPES.get(e);
      if (simple !== undefined) {
        out += simple;
      } else if (e >= '0' && e <= '7') {
        let k = 0;
        let octal = 0;
        while (k < 3 && s[i + k] >= '0' && s[i + k] <= '7') octal = octal * 8 + Number(s[i + k++]);
        i += k - 1;
        out += String.fromCharCode(octal & 0xff);
      } else {
        out += e;
      }
    } else if (c === "'" && s[i + 1] === "'") {
      out += "'";
      i++;
    } else {
      out += c;
    }
  }
  return out;
}

function syntaxError(token: Token): ConfSyntaxError {
  const near = token.kind === 'EOL' || token.kind === 'EOF' ? 'at end of line' : `near "${decode(token.text)}"`;
  return { line: token.line, message: `syntax error ${near}` };
}

/** Parses one file's bytes (or text). Never throws: problems come back as errors by line. */
export function parseConfText(content: Buffer | string): ConfText {
  const bytes = (typeof content === 'string' ? Buffer.from(content, 'utf8') : content).toString('latin1');
  const scanner = new Scanner(bytes);
  const items: ConfItem[] = [];
  const errors: ConfSyntaxError[] = [];

  for (let token = scanner.next(); token.kind !== 'EOF'; token = scanner.next()) {
    if (token.kind === 'EOL') continue;
    let bad: Token | null = null;
    if (token.kind !== 'ID' && token.kind !== 'QUALIFIED_ID') {
      bad = token;
    } else {
      const name = token;
      let t = scanner.next();
      if (t.kind === 'EQUALS') t = scanner.next();
      if (!VALUE_KINDS.has(t.kind)) {
        bad = t;
      } else {
        const value = t.kind === 'STRING' ? unquote(t.text) : t.text;
        const end = scanner.next();
        if (end.kind !== 'EOL' && end.kind !== 'EOF') {
          bad = end;
        } else {
          items.push({ name: decode(name.text), value: decode(value), line: name.line });
          if (end.kind === 'EOF') break;
          continue;
        }
      }
    }
    errors.push(syntaxError(bad));
    if (errors.length >= MAX_SYNTAX_ERRORS) break;
    // Resynchronise at the next line, as PostgreSQL does.
    while (bad.kind !== 'EOL' && bad.kind !== 'EOF') bad = scanner.next();
    if (bad.kind === 'EOF') break;
  }
  return { items, errors };
}
