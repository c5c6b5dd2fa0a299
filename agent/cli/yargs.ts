import type { Argv } from 'yargs';

type YargsFactory = (args?: readonly string[]) => Argv;

/**
 * yargs 18 ships as an ES module only. Node 20.19 and later load it with require(); older
 * Node 20 releases refuse (ERR_REQUIRE_ESM), and then it is imported. The import goes
 * through Function so that the CommonJS build keeps a real import() rather than turning it
 * into require().
 */
export async function loadYargs(): Promise<YargsFactory> {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require('yargs') as YargsFactory | { default: YargsFactory };
    return typeof mod === 'function' ? mod : mod.default;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ERR_REQUIRE_ESM') throw e;
    const importModule = new Function('specifier', 'return import(specifier)') as (s: string) => Promise<{ default: YargsFactory }>;
    return (await importModule('yargs')).default;
  }
}
