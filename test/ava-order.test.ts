// ava.config.js starts the slowest test files first (CI's 30-minute budget): its list must name
// files that exist, or a renamed slow file silently drops back to path order and may again
// start late and run alone at the end of the suite.
import test from 'ava';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helpers.ts';

interface AvaConfig {
  default: { sortTestFiles: (a: string, b: string) => number };
  SLOW: Record<string, number>;
}

test('ava.config.js orders existing test files, slowest first, the rest by path', async (t) => {
  // A plain-JS module (AVA reads no TypeScript config), imported by path.
  const { default: config, SLOW } = (await import(join(ROOT, 'ava.config.js'))) as AvaConfig;
  const sort = config.sortTestFiles;
  const files = [
    'test/common/log-line.test.ts',
    'test/update/ab-update-qemu.test.ts',
    'test/bootchain/chain-qemu.test.ts',
    'test/boundaries.test.ts',
  ].map((f) => join(ROOT, f));
  t.deepEqual(
    files.toSorted(sort).map((f) => f.slice(ROOT.length + 1)),
    [
      'test/update/ab-update-qemu.test.ts',
      'test/bootchain/chain-qemu.test.ts',
      'test/boundaries.test.ts',
      'test/common/log-line.test.ts',
    ],
  );
  for (const f of Object.keys(SLOW)) t.true(existsSync(join(ROOT, f)), `${f} is in ava.config.js but gone`);
});
