/**
 * Reads a list of postgresql.conf-syntax files in order, following `include`,
 * `include_if_exists` and `include_dir` the way PostgreSQL does (guc-file.l ParseConfigFile,
 * ParseConfigDirectory): relative paths are relative to the including file, a directory
 * contributes its files ending in ".conf" (not starting with ".") in byte order of their
 * names, nesting stops at depth 10. Unlike PostgreSQL, which only notices a file including
 * itself directly, every include cycle is reported with the chain of files that forms it.
 *
 * The result is the flat list of (name, value, file, line) in reading order, so that a
 * later line overrides an earlier one, plus every problem found on the way.
 */
import * as fs from 'fs';
import * as path from 'path';
import { parseConfText } from './conf_syntax';
import { ConfigIssue, SettingSource } from './issues';

/** A file to read; an optional one may be missing (PostgreSQL's postgresql.auto.conf is). */
export interface ConfigFileSpec {
  readonly path: string;
  readonly optional?: boolean;
}

export interface ConfEntry {
  readonly name: string;
  readonly value: string;
  readonly file: string;
  readonly line: number;
}

export interface ConfReadResult {
  readonly entries: ConfEntry[];
  readonly errors: ConfigIssue[];
  /** Every file actually read, includes too, in reading order. */
  readonly filesRead: string[];
}

/** CONF_FILE_MAX_DEPTH in PostgreSQL. */
const MAX_DEPTH = 10;

const SYNTAX_HINT =
  "each line is name = value; quote a value that is not a plain word or number, e.g. pgraft.address = '10.0.1.11'";

interface Caller {
  readonly file: string;
  readonly line: number;
}

class Reader {
  readonly entries: ConfEntry[] = [];
  readonly errors: ConfigIssue[] = [];
  readonly filesRead: string[] = [];
  /** Real paths of the files being read, outermost first: an include of one of them is a cycle. */
  private readonly stack: string[] = [];

  private error(caller: Caller | null, message: string, hint?: string): void {
    const source: SettingSource | undefined = caller ? { kind: 'file', file: caller.file, line: caller.line } : undefined;
    this.errors.push({ severity: 'error', source, message, hint });
  }

  readFile(file: string, strict: boolean, caller: Caller | null, depth: number): void {
    if (depth > MAX_DEPTH) {
      this.error(
        caller,
        `could not open configuration file "${file}": includes are nested more than ${MAX_DEPTH} deep`,
        'flatten the chain of include directives',
      );
      return;
    }
    let content: Buffer;
    let real: string;
    try {
      real = fs.realpathSync(file);
      content = fs.readFileSync(real);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (!strict && (code === 'ENOENT' || code === 'ENOTDIR')) return;
      const hint = caller ? undefined : 'check the file given with --config, or the data directory (PGDATA)';
      this.error(caller, `could not open configuration file "${file}": ${describeFsError(err)}`, hint);
      return;
    }
    const cycleAt = this.stack.indexOf(real);
    if (cycleAt >= 0) {
      const chain = [...this.stack.slice(cycleAt), real].join(' -> ');
      this.error(caller, `configuration files include each other in a cycle: ${chain}`, 'remove one of these include directives');
      return;
    }
    this.stack.push(real);
    this.filesRead.push(file);
    const parsed = parseConfText(content);
    for (const e of parsed.errors) this.error({ file, line: e.line }, e.message, SYNTAX_HINT);
    for (const item of parsed.items) {
      const here: Caller = { file, line: item.line };
      switch (item.name.toLowerCase()) {
        case 'include':
          this.include(item.value, true, here, depth + 1);
          break;
        case 'include_if_exists':
          this.include(item.value, false, here, depth + 1);
          break;
        case 'include_dir':
          this.includeDir(item.value, here, depth + 1);
          break;
        default:
          this.entries.push({ name: item.name, value: item.value, file, line: item.line });
      }
    }
    this.stack.pop();
  }

  private include(target: string, strict: boolean, caller: Caller, depth: number): void {
    if (target.trim() === '') {
      this.error(caller, `empty configuration file name: "${target}"`, 'name the file to include');
      return;
    }
    this.readFile(path.resolve(path.dirname(caller.file), target), strict, caller, depth);
  }

  private includeDir(target: string, caller: Caller, depth: number): void {
    if (target.trim() === '') {
      this.error(caller, `empty configuration directory name: "${target}"`, 'name the directory to include');
      return;
    }
    const dir = path.resolve(path.dirname(caller.file), target);
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch (err) {
      this.error(caller, `could not open configuration directory "${dir}": ${describeFsError(err)}`);
      return;
    }
    const files: string[] = [];
    for (const name of names) {
      if (name.length < 6 || name.startsWith('.') || !name.endsWith('.conf')) continue;
      const full = path.join(dir, name);
      try {
        if (fs.statSync(full).isDirectory()) continue;
      } catch (err) {
        this.error(caller, `could not read "${full}": ${describeFsError(err)}`);
        continue;
      }
      files.push(full);
    }
    // strcmp order, as PostgreSQL sorts them: bytes, not locale.
    files.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const f of files) this.readFile(f, true, caller, depth);
  }
}

export function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    case 'EISDIR':
      return 'is a directory';
    default:
      return e.message ?? String(err);
  }
}

/**
 * Reads the given files in order. A relative path in the list is relative to the current
 * directory; a relative path in an include directive is relative to the including file.
 */
export function readConfFiles(files: readonly (string | ConfigFileSpec)[]): ConfReadResult {
  const reader = new Reader();
  for (const f of files) {
    const spec = typeof f === 'string' ? { path: f } : f;
    reader.readFile(path.resolve(spec.path), !spec.optional, null, 0);
  }
  return { entries: reader.entries, errors: reader.errors, filesRead: reader.filesRead };
}
