/**
 * pgraft.* settings: read from postgresql.conf-syntax files and PGRAFT_* environment
 * variables, checked, and reloaded on SIGHUP. See docs/configuration.md.
 */
export { ConfigError, describeSource, formatIssue } from './issues';
export type { ConfigIssue, SettingSource, Severity } from './issues';
export type { ConfigFileSpec } from './conf_files';
export { AUTO_CONFIG_FILE, CONFIG_FILE, defaultConfigFiles, resolveConfigFiles } from './files';
export type { ConfigLocation } from './files';
export { evaluateConfig, loadConfig } from './load';
export type { LoadOptions, LoadOutcome, LoadedConfig } from './load';
export { describeChange, reloadConfig } from './reload';
export type { ReloadResult, SettingChange } from './reload';
export { PREFIX, SETTINGS, SETTING_NAMES, envVariable, formatValue, qualified } from './settings';
export type { Member, PgraftConfig, SettingName, SettingValue } from './settings';
export { settingsReference } from './reference';
