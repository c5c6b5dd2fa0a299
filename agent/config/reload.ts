/**
 * Reload with SIGHUP semantics, as PostgreSQL does it: read the files again; if anything is
 * wrong, keep running with the old configuration and report why; otherwise apply what can
 * change while running and leave the rest at its running value until the next restart,
 * reporting it as pending. Wiring the signal is the agent's business; this is the decision.
 */
import { ConfigIssue, SettingSource, describeSource } from './issues';
import { LoadOptions, LoadedConfig, evaluateConfig } from './load';
import { PgraftConfig, SETTING_NAMES, SettingName, formatValue, qualified, specOf } from './settings';

export interface SettingChange {
  readonly name: SettingName;
  /** With its prefix: "pgraft.election_timeout". */
  readonly setting: string;
  /** The values as written in postgresql.conf; secrets show as "(hidden)". */
  readonly from: string;
  readonly to: string;
  /** Where the new value comes from. */
  readonly source: SettingSource;
}

export interface ReloadResult {
  /** False when the files have errors: nothing changed, `loaded` is the configuration as before. */
  readonly ok: boolean;
  /** The configuration in force after the reload (restart-only settings keep their running values). */
  readonly loaded: LoadedConfig;
  /** Changes now in force. */
  readonly applied: readonly SettingChange[];
  /** Changes read from the files that take effect only when the agent restarts. */
  readonly pendingRestart: readonly SettingChange[];
  readonly errors: readonly ConfigIssue[];
  readonly warnings: readonly ConfigIssue[];
}

/**
 * Reads the configuration again (the same files, environment and options as `current`, unless
 * others are given) and compares it with the running one.
 */
export function reloadConfig(current: LoadedConfig, loadOptions: LoadOptions = current.loadOptions): ReloadResult {
  const outcome = evaluateConfig(loadOptions);
  if (!outcome.ok) {
    return { ok: false, loaded: current, applied: [], pendingRestart: [], errors: outcome.errors, warnings: outcome.warnings };
  }
  const next = outcome.loaded;
  const config: Record<string, unknown> = { ...next.config };
  const sources = { ...next.sources };
  const applied: SettingChange[] = [];
  const pendingRestart: SettingChange[] = [];
  for (const name of SETTING_NAMES) {
    const spec = specOf(name);
    const before = current.config[name];
    const after = next.config[name];
    if (spec.same(before, after)) continue;
    const change: SettingChange = {
      name,
      setting: qualified(name),
      from: formatValue(name, before),
      to: formatValue(name, after),
      source: next.sources[name],
    };
    if (spec.live) {
      applied.push(change);
    } else {
      pendingRestart.push(change);
      config[name] = before;
      sources[name] = current.sources[name];
    }
  }
  const loaded: LoadedConfig = { ...next, config: config as PgraftConfig, sources };
  return { ok: true, loaded, applied, pendingRestart, errors: [], warnings: next.warnings };
}

/** One line per change, for the agent's log: "pgraft.election_timeout: 1s -> 2s (/etc/...:12)". */
export function describeChange(change: SettingChange): string {
  return `${change.setting}: ${change.from} -> ${change.to} (${describeSource(change.source)})`;
}
