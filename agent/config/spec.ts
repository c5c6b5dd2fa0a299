/**
 * The shape of one setting and the builders the registry (settings.ts) is written with.
 * A builder fixes the type, and with it the unit, the parser and the display form; the
 * registry entry adds the default, the range, whether a reload applies it, and its meaning.
 */
import * as path from 'path';
import { Checked, Member, formatMembers, parseMembers } from './members';
import { SIZE_UNITS, TIME_UNITS, Unit, formatWithUnits, parseBool, parseNumber, unitNames } from './values';

export type SettingType = 'boolean' | 'integer' | 'time' | 'size' | 'string' | 'path' | 'enum' | 'member list';

export type SettingGroup = 'identity' | 'consensus' | 'log' | 'batching' | 'monitoring' | 'security' | 'postgres';

export interface SettingSpec<T> {
  readonly type: SettingType;
  /** The value when nothing sets it; undefined when the setting must be set. */
  readonly default: T | undefined;
  /** The accepted values as an operator reads them ("10ms .. 5min"), or '' when any value goes. */
  readonly range: string;
  /** Bounds of a numeric setting, in its base unit (milliseconds, bytes). */
  readonly min?: number;
  readonly max?: number;
  /** True: a reload (SIGHUP) applies a change to the running agent. False: it waits for a restart. */
  readonly live: boolean;
  /** Never shown: listings and reload reports say that it changed, not what it is. */
  readonly secret: boolean;
  /**
   * Also read by the SQL functions inside PostgreSQL (current_setting), which see
   * postgresql.conf and ALTER SYSTEM but not the agent's environment or options.
   */
  readonly readBySql?: boolean;
  readonly group: SettingGroup;
  readonly description: string;
  /** The text of a line or variable to a value; the problem otherwise, in the operator's words. */
  parse(text: string): Checked<T>;
  /** The value as it would be written in postgresql.conf. */
  format(value: T): string;
  same(a: T, b: T): boolean;
}

interface Common {
  readonly readBySql?: boolean;
  readonly live: boolean;
  readonly group: SettingGroup;
  readonly description: string;
}

const ok = <T>(value: T): Checked<T> => ({ ok: true, value });
const fail = <T>(problem: string, hint?: string): Checked<T> => ({ ok: false, problem, hint });

function quote(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

export const NOT_SET = '(not set)';

export function bool(o: Common & { readonly default: boolean }): SettingSpec<boolean> {
  return {
    ...o,
    type: 'boolean',
    range: 'on, off',
    secret: false,
    parse: (text) => {
      const b = parseBool(text);
      return b === null ? fail('expected a boolean', 'use on or off (true/false, yes/no and 1/0 work too)') : ok(b);
    },
    format: (b) => (b ? 'on' : 'off'),
    same: (a, b) => a === b,
  };
}

interface NumericOptions extends Common {
  /** Omitted for a setting that must be set. */
  readonly default?: number;
  readonly min: number;
  readonly max: number;
}

function numeric(type: 'integer' | 'time' | 'size', units: readonly Unit[] | null, o: NumericOptions): SettingSpec<number> {
  const show = (n: number): string => (units ? formatWithUnits(n, units) : String(n));
  const range = `${show(o.min)} .. ${show(o.max)}`;
  const syntax: Record<typeof type, string> = {
    integer: 'expected an integer',
    time: 'expected a time such as 100ms, 1s or 2min',
    size: 'expected a size such as 512kB or 64MB',
  };
  const unitHint: Record<typeof type, string> = {
    integer: 'write the number alone',
    time: `valid units are ${unitNames(TIME_UNITS)} (case-sensitive); a number without a unit is milliseconds`,
    size: `valid units are ${unitNames(SIZE_UNITS)} (1024-based, case-sensitive); a number without a unit is bytes`,
  };
  return {
    ...o,
    default: o.default,
    type,
    range,
    secret: false,
    parse: (text) => {
      const n = parseNumber(text, units);
      if (!n.ok) {
        if (n.reason === 'syntax') return fail(syntax[type], unitHint[type]);
        if (n.reason === 'unexpected-unit') return fail('takes no unit: it is a plain number', unitHint[type]);
        return fail(`expected a ${type} with a valid unit`, unitHint[type]);
      }
      if (n.value < o.min || n.value > o.max) return fail(`${show(n.value)} is outside the valid range ${range}`);
      return ok(n.value);
    },
    format: show,
    same: (a, b) => a === b,
  };
}

export const int = (o: NumericOptions): SettingSpec<number> => numeric('integer', null, o);
/** Milliseconds; accepts us, ms, s, min, h, d. */
export const time = (o: NumericOptions): SettingSpec<number> => numeric('time', TIME_UNITS, o);
/** Bytes; accepts B, kB, MB, GB, TB. */
export const size = (o: NumericOptions): SettingSpec<number> => numeric('size', SIZE_UNITS, o);

function stringSpec<T extends string | null>(
  type: 'string' | 'path',
  o: Common & { readonly default: T | undefined; readonly secret?: boolean; readonly range?: string },
  check: (s: string) => Checked<T>,
): SettingSpec<T> {
  return {
    ...o,
    type,
    range: o.range ?? (type === 'path' ? 'absolute path' : ''),
    secret: o.secret ?? false,
    parse: check,
    format: (s) => (s === null ? NOT_SET : quote(s)),
    same: (a, b) => a === b,
  };
}

/** A string. */
export function text(
  o: Common & {
    readonly default: string;
    /** What is wrong with a value, or null. */
    readonly check?: (s: string) => string | null;
    /** What to do when `check` finds a problem. */
    readonly hint?: string;
    /** The accepted values in words, for the reference. */
    readonly range?: string;
  },
): SettingSpec<string> {
  return stringSpec('string', o, (s) => {
    const problem = o.check?.(s) ?? null;
    return problem === null ? ok(s) : fail(problem, o.hint);
  });
}

/** A string that may be left unset (an empty value unsets it, as in PostgreSQL). */
export function optionalText(
  o: Common & {
    readonly secret?: boolean;
    /** What is wrong with a value that is set, or null. */
    readonly check?: (s: string) => string | null;
    readonly hint?: string;
    readonly range?: string;
  },
): SettingSpec<string | null> {
  return stringSpec('string', { ...o, default: null }, (s) => {
    if (s === '') return ok(null);
    const problem = o.check?.(s) ?? null;
    return problem === null ? ok(s) : fail(problem, o.hint);
  });
}

function absolute<T extends string | null>(s: string): Checked<T> {
  if (path.isAbsolute(s)) return ok(s as T);
  return fail(
    `"${s}" is a relative path`,
    'give an absolute path: the agent does not run in the directory the configuration file is in',
  );
}

/** An absolute path that must be set. */
export function requiredPath(o: Common): SettingSpec<string> {
  return stringSpec<string>('path', { ...o, default: undefined }, (s) => (s === '' ? fail('must not be empty') : absolute<string>(s)));
}

/** An absolute path, or unset. */
export function optionalPath(o: Common): SettingSpec<string | null> {
  return stringSpec<string | null>('path', { ...o, default: null }, (s) => (s === '' ? ok(null) : absolute<string | null>(s)));
}

/** One of a fixed list of words, case-insensitive; `aliases` map other accepted words to them. */
export function oneOf<V extends string>(
  o: Common & { readonly values: readonly V[]; readonly default: V; readonly aliases?: Readonly<Record<string, V>> },
): SettingSpec<V> {
  const list = o.values.join(', ');
  return {
    ...o,
    type: 'enum',
    range: list,
    secret: false,
    parse: (s) => {
      const word = s.toLowerCase();
      const value = o.values.find((v) => v === word) ?? (o.aliases && Object.hasOwn(o.aliases, word) ? o.aliases[word] : undefined);
      return value === undefined ? fail(`expected one of ${list}`) : ok(value);
    },
    format: (v) => v,
    same: (a, b) => a === b,
  };
}

/** id=host:port,... as in pgraft.initial_cluster. */
export function memberList(o: Common & { readonly maxId: number }): SettingSpec<readonly Member[]> {
  return {
    live: o.live,
    group: o.group,
    description: o.description,
    type: 'member list',
    default: [],
    range: `node_id=host:port, ... (node ids 1 .. ${o.maxId})`,
    secret: false,
    parse: (s) => parseMembers(s, o.maxId),
    format: (ms) => (ms.length === 0 ? "''" : quote(formatMembers(ms))),
    same: (a, b) => formatMembers(a) === formatMembers(b),
  };
}
