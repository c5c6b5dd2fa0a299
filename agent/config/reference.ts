/**
 * The settings reference in docs/configuration.md, generated from the registry so that the
 * documentation cannot drift from the code (a unit test compares the two).
 */
import { NOT_SET, SettingGroup } from './spec';
import { SETTING_NAMES, envVariable, qualified, specOf } from './settings';

const GROUP_TITLES: Record<SettingGroup, string> = {
  identity: 'Identity and network',
  consensus: 'Consensus',
  log: 'Log and snapshots',
  batching: 'Batching and replication',
  monitoring: 'Monitoring and logging',
  security: 'Security',
  postgres: 'The local PostgreSQL',
};

function cell(s: string): string {
  return s.replace(/\|/g, '\\|');
}

/** Markdown: one table per group, one row per setting. */
export function settingsReference(): string {
  const out: string[] = [];
  for (const group of Object.keys(GROUP_TITLES) as SettingGroup[]) {
    const names = SETTING_NAMES.filter((n) => specOf(n).group === group);
    if (names.length === 0) continue;
    out.push(`### ${GROUP_TITLES[group]}`, '');
    out.push('| setting / environment variable | type | default | range | on reload | meaning |');
    out.push('| --- | --- | --- | --- | --- | --- |');
    for (const name of names) {
      const spec = specOf(name);
      const def = spec.default === undefined ? '**required**' : spec.default === null ? NOT_SET : `\`${spec.format(spec.default)}\``;
      const range = spec.range === '' ? 'any' : cell(spec.range);
      const reload = spec.live ? 'applied' : 'restart';
      out.push(`| \`${qualified(name)}\`<br>\`${envVariable(name)}\` | ${spec.type} | ${cell(def)} | ${range} | ${reload} | ${cell(spec.description)} |`);
    }
    out.push('');
  }
  return out.join('\n');
}
