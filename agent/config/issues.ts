/**
 * What the configuration code reports: where a value came from, the problems found with it,
 * and the error that carries all of them at once. Every problem names the place to fix
 * (file:line, environment variable or option), says what is wrong and what it means, and,
 * where one exists, a hint saying what to do.
 */

/** Where a setting's value came from. */
export type SettingSource =
  | { readonly kind: 'default' }
  | { readonly kind: 'file'; readonly file: string; readonly line: number }
  | { readonly kind: 'env'; readonly variable: string }
  | { readonly kind: 'option' };

export const DEFAULT_SOURCE: SettingSource = { kind: 'default' };

export type Severity = 'error' | 'warning';

export interface ConfigIssue {
  readonly severity: Severity;
  /** The setting concerned, with its prefix ("pgraft.port"), when there is one. */
  readonly setting?: string;
  /** The place to fix: a file and line, an environment variable, an option. */
  readonly source?: SettingSource;
  /** What is wrong and what it means. */
  readonly message: string;
  /** What to do about it. */
  readonly hint?: string;
}

export function describeSource(source: SettingSource): string {
  switch (source.kind) {
    case 'default':
      return 'default';
    case 'file':
      return `${source.file}:${source.line}`;
    case 'env':
      return `environment variable ${source.variable}`;
    case 'option':
      return 'command-line option';
  }
}

/** One issue as the operator reads it: `where: message`, then the hint on its own line. */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.source && issue.source.kind !== 'default' ? `${describeSource(issue.source)}: ` : '';
  const hint = issue.hint ? `\n    hint: ${issue.hint}` : '';
  return `${where}${issue.message}${hint}`;
}

function count(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * The configuration could not be used. Carries every error found in one pass (and the
 * warnings found on the way), so that the operator fixes them all in one edit.
 */
export class ConfigError extends Error {
  readonly errors: readonly ConfigIssue[];
  readonly warnings: readonly ConfigIssue[];

  constructor(errors: readonly ConfigIssue[], warnings: readonly ConfigIssue[] = []) {
    const lines = errors.map((e) => `  ${formatIssue(e)}`);
    super(`${count(errors.length, 'error')} in the pgraft configuration:\n${lines.join('\n')}`);
    this.name = 'ConfigError';
    this.errors = errors;
    this.warnings = warnings;
  }
}
