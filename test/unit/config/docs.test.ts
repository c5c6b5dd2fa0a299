/**
 * docs/configuration.md carries the settings reference generated from the registry, between
 * two markers. After changing a setting, regenerate it with
 *   UPDATE_CONFIG_DOCS=1 npx jest test/unit/config/docs.test.ts
 */
import * as fs from 'fs';
import * as path from 'path';
import { SETTING_NAMES, envVariable, qualified, settingsReference } from '../../../agent/config';
import { parseConfText } from '../../../agent/config/conf_syntax';

const DOC = path.join(__dirname, '..', '..', '..', 'docs', 'configuration.md');
const BEGIN = '<!-- settings reference: generated from agent/config/settings.ts -->';
const END = '<!-- end of settings reference -->';

function generatedBlock(doc: string): string {
  const start = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  expect(start).toBeGreaterThanOrEqual(0);
  expect(end).toBeGreaterThan(start);
  return doc.slice(start + BEGIN.length, end).trim();
}

describe('docs/configuration.md', () => {
  it('carries the settings reference as the registry generates it', () => {
    let doc = fs.readFileSync(DOC, 'utf8');
    if (process.env.UPDATE_CONFIG_DOCS === '1') {
      const start = doc.indexOf(BEGIN) + BEGIN.length;
      doc = `${doc.slice(0, start)}\n\n${settingsReference()}\n${doc.slice(doc.indexOf(END))}`;
      fs.writeFileSync(DOC, doc);
    }
    expect(generatedBlock(doc)).toBe(settingsReference().trim());
  });

  it('shows only examples that parse, with known setting names', () => {
    const blocks = [...fs.readFileSync(DOC, 'utf8').matchAll(/```ini\n([\s\S]*?)```/g)].map((m) => m[1]);
    expect(blocks.length).toBeGreaterThanOrEqual(6);
    for (const block of blocks) {
      const parsed = parseConfText(block);
      expect(parsed.errors).toEqual([]);
      for (const item of parsed.items) {
        const [prefix, name] = item.name.toLowerCase().split('.');
        if (prefix === 'pgraft') expect(SETTING_NAMES).toContain(name);
      }
    }
  });

  it('lists every setting with its environment variable', () => {
    const reference = settingsReference();
    for (const name of SETTING_NAMES) {
      expect(reference).toContain(`\`${qualified(name)}\`<br>\`${envVariable(name)}\``);
    }
  });
});
