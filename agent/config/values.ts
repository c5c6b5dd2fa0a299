/**
 * Setting values as PostgreSQL reads its own (src/backend/utils/misc/guc.c): parse_bool,
 * parse_int with units, and the form SHOW prints them in. Units are case-sensitive, may be
 * separated from the number by spaces, and a fractional value is rounded to the next
 * smaller unit ("1.5min" is 90s); a number without a unit is in the setting's base unit.
 */

export interface Unit {
  readonly name: string;
  /** How many base units one of this unit is. */
  readonly factor: number;
}

/** Units of time settings, whose base unit is the millisecond; largest first. */
export const TIME_UNITS: readonly Unit[] = [
  { name: 'd', factor: 86_400_000 },
  { name: 'h', factor: 3_600_000 },
  { name: 'min', factor: 60_000 },
  { name: 's', factor: 1000 },
  { name: 'ms', factor: 1 },
  { name: 'us', factor: 0.001 },
];

/** Units of size settings, whose base unit is the byte; 1024-based like PostgreSQL's. */
export const SIZE_UNITS: readonly Unit[] = [
  { name: 'TB', factor: 1024 ** 4 },
  { name: 'GB', factor: 1024 ** 3 },
  { name: 'MB', factor: 1024 ** 2 },
  { name: 'kB', factor: 1024 },
  { name: 'B', factor: 1 },
];

/**
 * on/off, true/false, yes/no, 1/0, case-insensitive; any unique prefix of the words is
 * accepted ("t", "of"), but "o" alone is not. Null when the text is none of these.
 */
export function parseBool(text: string): boolean | null {
  const v = text.toLowerCase();
  const prefixOf = (word: string, minLength = 1): boolean =>
    v.length >= minLength && v.length <= word.length && word.startsWith(v);
  switch (v[0]) {
    case 't':
      return prefixOf('true') ? true : null;
    case 'f':
      return prefixOf('false') ? false : null;
    case 'y':
      return prefixOf('yes') ? true : null;
    case 'n':
      return prefixOf('no') ? false : null;
    case 'o':
      if (prefixOf('on', 2)) return true;
      if (prefixOf('off', 2)) return false;
      return null;
    case '1':
      return v.length === 1 ? true : null;
    case '0':
      return v.length === 1 ? false : null;
    default:
      return null;
  }
}

/** C's rint() under the default rounding mode: halves go to the even neighbour. */
export function rint(x: number): number {
  const r = Math.round(x);
  const rounded = Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  return rounded + 0; // no -0
}

export type NumberParse =
  | { readonly ok: true; readonly value: number }
  /** syntax: not a number; unit: an unknown unit or text after it; unexpected-unit: the setting takes none. */
  | { readonly ok: false; readonly reason: 'syntax' | 'unit' | 'unexpected-unit' };

const SPACE = /^[ \t\n\v\f\r]*/;
/** strtol(text, &end, 0): optional sign, then hex (0x), octal (leading 0) or decimal. */
const STRTOL = /^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)/;
/** strtod(text, &end) for the decimal forms. */
const STRTOD = /^[ \t\n\v\f\r]*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/;

/**
 * A number with an optional unit from `units` (null: the setting takes no unit), converted
 * to the base unit and rounded to an integer, as parse_int does. As in PostgreSQL, 0x1F is
 * hexadecimal, 017 is octal, and 1.5 or 1e3 are read as decimals.
 */
export function parseNumber(text: string, units: readonly Unit[] | null): NumberParse {
  let value: number;
  let rest: string;
  const int = STRTOL.exec(text);
  if (int) {
    const digits = int[2];
    const magnitude = /^0[xX]/.test(digits)
      ? parseInt(digits.slice(2), 16)
      : digits.length > 1 && digits[0] === '0'
        ? parseInt(digits, 8)
        : parseInt(digits, 10);
    value = int[1] === '-' ? -magnitude : magnitude;
    rest = text.slice(int[0].length);
  } else {
    value = NaN;
    rest = text;
  }
  // parse_int re-reads as a decimal when strtol stopped at a '.' or an exponent, or overflowed.
  if (/^[.eE]/.test(rest) || !Number.isSafeInteger(value)) {
    const dbl = STRTOD.exec(text);
    if (!dbl || (!int && !/^[.eE]/.test(text))) return { ok: false, reason: 'syntax' };
    value = parseFloat(dbl[0].trim());
    rest = text.slice(dbl[0].length);
  }
  if (!Number.isFinite(value)) return { ok: false, reason: 'syntax' };
  rest = rest.replace(SPACE, '');
  if (rest !== '') {
    if (!units) return { ok: false, reason: 'unexpected-unit' };
    const unit = rest.replace(/[ \t\n\v\f\r]+$/, '');
    const i = units.findIndex((u) => u.name === unit);
    if (i < 0) return { ok: false, reason: 'unit' };
    value *= units[i].factor;
    const smaller = units[i + 1];
    if (smaller) value = rint(value / smaller.factor) * smaller.factor;
  }
  return { ok: true, value: rint(value) };
}

/** SHOW's form: the largest unit that divides the value exactly ("1s", "1500ms", "64MB"). */
export function formatWithUnits(value: number, units: readonly Unit[]): string {
  if (value === 0) return '0';
  for (const u of units) {
    if (u.factor >= 1 && value % u.factor === 0) return `${value / u.factor}${u.name}`;
  }
  return String(value);
}

/** "us, ms, s, min, h and d": smallest first, as PostgreSQL's hint lists them. */
export function unitNames(units: readonly Unit[]): string {
  const names = units.map((u) => u.name).reverse();
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}
