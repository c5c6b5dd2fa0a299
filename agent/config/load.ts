/**
 * Loading the configuration: the files in order (later lines override earlier ones), then
 * environment variables (PGRAFT_NODE_ID, ...), then options given by the caller (command
 * line), each level overriding the one before. Every problem is collected in one pass:
 * syntax errors, unknown pgraft.* names, bad values, missing required settings, and broken
 * relations between settings.
 */
import * as fs from 'fs';
import { CHECKS, CheckContext, PostgresSetting } from './checks';
import { ConfigFileSpec, describeFsError, readConfFiles } from './conf_files';
import { ConfigError, ConfigIssue, DEFAULT_SOURCE, SettingSource } from './issues';
import { PREFIX, PgraftConfig, SETTING_NAMES, SettingName, envVariable, isSettingName, qualified, specOf } from './settings';
import { closest, editDistance } from './suggest';

export interface LoadOptions {
  /** Files in reading order, e.g. postgresql.conf then postgresql.auto.conf. */
  readonly files: readonly (string | ConfigFileSpec)[];
  /** Where PGRAFT_* variables are looked up; process.env when omitted. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Values that override files and environment (command-line options), as text, by setting name. */
  readonly overrides?: Readonly<Partial<Record<SettingName, string>>>;
}

export interface LoadedConfig {
  readonly config: PgraftConfig;
  /** Where each setting's value came from. */
  readonly sources: Readonly<Record<SettingName, SettingSource>>;
  readonly warnings: readonly ConfigIssue[];
  /** Every file read, includes too. */
  readonly filesRead: readonly string[];
  /** What was loaded, so that a reload reads the same again. */
  readonly loadOptions: LoadOptions;
}

export type LoadOutcome =
  | { readonly ok: true; readonly loaded: LoadedConfig }
  | { readonly ok: false; readonly errors: readonly ConfigIssue[]; readonly warnings: readonly ConfigIssue[] };

interface RawValue {
  readonly text: string;
  readonly source: SettingSource;
}

const ENV_PREFIX = `${PREFIX.toUpperCase()}_`;

function unknownSetting(written: string, source: SettingSource): ConfigIssue {
  const name = written.slice(PREFIX.length + 1).toLowerCase();
  const guess = closest(name, SETTING_NAMES);
  return {
    severity: 'error',
    setting: written,
    source,
    message: `unknown setting "${written}"${guess ? `; did you mean "${PREFIX}.${guess}"?` : ''}`,
    hint: guess
      ? undefined
      : 'docs/configuration.md lists every pgraft setting; the agent refuses names it does not know ' +
        'so that a misspelled one does not silently leave the default in force',
  };
}

function badValue(name: SettingName, raw: RawValue, problem: string, hint?: string): ConfigIssue {
  const shown = specOf(name).secret ? '' : ` "${raw.text}"`;
  const message = `invalid value${shown} for ${qualified(name)}: ${problem}`;
  return { severity: 'error', setting: qualified(name), source: raw.source, message, hint };
}

function missing(name: SettingName, files: readonly string[]): ConfigIssue {
  const where = files.length > 0 ? `in ${files.join(', ')} or ` : 'in any configuration file or ';
  return {
    severity: 'error',
    setting: qualified(name),
    message: `${qualified(name)} is not set ${where}the environment (${envVariable(name)}), and it has no default`,
    hint: `${specOf(name).description} Add ${qualified(name)} = ... to postgresql.conf, or set ${envVariable(name)}.`,
  };
}

/** Reads the token file named by auth_token_file; the token is what it holds, trimmed. */
function readTokenFile(file: string, source: SettingSource): { token: string | null; issues: ConfigIssue[] } {
  const at = { setting: qualified('auth_token_file'), source };
  try {
    const token = fs.readFileSync(file, 'utf8').trim();
    const issues: ConfigIssue[] = [];
    if (token === '') {
      issues.push({ ...at, severity: 'error', message: `the token file '${file}' is empty`, hint: 'write the API token into it' });
    }
    if ((fs.statSync(file).mode & 0o007) !== 0) {
      const message = `the token file '${file}' can be read by every user of this machine`;
      issues.push({ ...at, severity: 'warning', message, hint: `chmod 600 '${file}'` });
    }
    return { token, issues };
  } catch (err) {
    const message = `cannot read the token file '${file}': ${describeFsError(err)}`;
    return { token: null, issues: [{ ...at, severity: 'error', message, hint: "check the path, and that the agent's user may read the file" }] };
  }
}

/** Issues in files first, in the order the files were read and by line; then the others, as found. */
function inReadingOrder(issues: readonly ConfigIssue[], files: readonly string[]): ConfigIssue[] {
  const key = (i: ConfigIssue): [number, number] => {
    const s = i.source;
    if (!s || s.kind !== 'file') return [files.length, 0];
    const at = files.indexOf(s.file);
    return [at < 0 ? files.length : at, s.line];
  };
  return [...issues].sort((a, b) => {
    const [fa, la] = key(a);
    const [fb, lb] = key(b);
    return fa - fb || la - lb;
  });
}

/**
 * Loads the configuration without throwing: either the configuration (with its warnings) or
 * every error found. `files` are read in order; `env` defaults to process.env.
 */
export function evaluateConfig(loadOptions: LoadOptions): LoadOutcome {
  const env = loadOptions.env ?? process.env;
  const read = readConfFiles(loadOptions.files);
  const errors: ConfigIssue[] = [...read.errors];
  const warnings: ConfigIssue[] = [];
  const raw = new Map<SettingName, RawValue>();
  const postgres = new Map<string, PostgresSetting>();

  for (const entry of read.entries) {
    const source: SettingSource = { kind: 'file', file: entry.file, line: entry.line };
    const lower = entry.name.toLowerCase();
    const dot = lower.indexOf('.');
    const prefix = dot < 0 ? '' : lower.slice(0, dot);
    const name = lower.slice(dot + 1);
    if (prefix === PREFIX) {
      if (isSettingName(name)) raw.set(name, { text: entry.value, source });
      else errors.push(unknownSetting(entry.name, source));
      continue;
    }
    postgres.set(lower, { value: entry.value, source });
    if (prefix !== '' && isSettingName(name) && editDistance(prefix, PREFIX) <= 2) {
      warnings.push({
        severity: 'warning',
        setting: entry.name,
        source,
        message: `"${entry.name}" is not a pgraft setting and is ignored; did you mean "${PREFIX}.${name}"?`,
      });
    }
  }

  for (const [variable, text] of Object.entries(env)) {
    if (!variable.startsWith(ENV_PREFIX) || text === undefined || text === '') continue;
    const name = variable.slice(ENV_PREFIX.length).toLowerCase();
    if (isSettingName(name)) {
      raw.set(name, { text, source: { kind: 'env', variable } });
      continue;
    }
    // Other PGRAFT_* variables may belong to tools around the agent; only likely typos are reported.
    const guess = closest(name, SETTING_NAMES);
    if (guess && editDistance(name, guess) <= 2) {
      warnings.push({
        severity: 'warning',
        source: { kind: 'env', variable },
        message: `matches no setting and is ignored; did you mean ${envVariable(guess)}?`,
      });
    }
  }

  for (const [name, text] of Object.entries(loadOptions.overrides ?? {})) {
    if (text === undefined) continue;
    if (isSettingName(name)) raw.set(name, { text, source: { kind: 'option' } });
    else errors.push(unknownSetting(`${PREFIX}.${name}`, { kind: 'option' }));
  }

  const values: Record<string, unknown> = {};
  const sources = {} as Record<SettingName, SettingSource>;
  const invalid = new Set<SettingName>();
  for (const name of SETTING_NAMES) {
    const spec = specOf(name);
    const given = raw.get(name);
    sources[name] = given?.source ?? DEFAULT_SOURCE;
    values[name] = spec.default;
    if (given) {
      const parsed = spec.parse(given.text);
      if (parsed.ok) {
        values[name] = parsed.value;
        continue;
      }
      errors.push(badValue(name, given, parsed.problem, parsed.hint));
      invalid.add(name);
    } else if (spec.default === undefined) {
      errors.push(missing(name, read.filesRead));
      invalid.add(name);
    }
  }

  const ctx: CheckContext = { config: values as PgraftConfig, sources, postgres };
  for (const check of CHECKS) {
    if (check.uses.some((n) => invalid.has(n))) continue;
    for (const found of check.run(ctx)) (found.severity === 'error' ? errors : warnings).push(found);
  }

  const tokenFile = values.auth_token_file;
  if (typeof tokenFile === 'string' && values.auth_token === null) {
    const { token, issues } = readTokenFile(tokenFile, sources.auth_token_file);
    for (const found of issues) (found.severity === 'error' ? errors : warnings).push(found);
    values.auth_token = token;
    sources.auth_token = sources.auth_token_file;
  }

  const sortedWarnings = inReadingOrder(warnings, read.filesRead);
  if (errors.length > 0) return { ok: false, errors: inReadingOrder(errors, read.filesRead), warnings: sortedWarnings };
  const config = values as PgraftConfig;
  return { ok: true, loaded: { config, sources, warnings: sortedWarnings, filesRead: read.filesRead, loadOptions } };
}

/** Loads the configuration, or throws a ConfigError listing every error found. */
export function loadConfig(loadOptions: LoadOptions): LoadedConfig {
  const outcome = evaluateConfig(loadOptions);
  if (!outcome.ok) throw new ConfigError(outcome.errors, outcome.warnings);
  return outcome.loaded;
}

