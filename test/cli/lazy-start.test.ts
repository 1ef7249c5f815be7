// What a binary loads for `--help` and `--version`: its own table and common/, never a verb's
// module nor the heavy dependencies behind the verbs (X.509, execa, NATS, D-Bus). Counted
// by a module.registerHooks load hook, Node's own, in a preloaded file; a regression here
// is what made `mway-layer --help` load 567 modules (doc/performance.md, cli).

import { writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { execa } from 'execa';
import { BINS, ROOT, tempDir } from '../helpers.ts';

const HOOK = `import { registerHooks } from 'node:module';
import { writeSync } from 'node:fs';
const seen = [];
registerHooks({ load(url, context, next) { seen.push(url); return next(url, context); } });
process.on('exit', () => writeSync(2, '\\nLOADED ' + JSON.stringify(seen) + '\\n'));
`;

/** Dependencies only a verb needs; none may load before a verb runs. */
const HEAVY = [
  '@peculiar',
  'execa',
  'tsyringe',
  '@nats-io',
  'dbus-next',
  'multicast-dns',
  'tar-stream',
  '@noble',
];

async function loaded(hook: string, bin: keyof typeof BINS, args: string[]): Promise<string[]> {
  const r = await execa(process.execPath, ['--import', hook, BINS[bin], ...args], {
    reject: false,
    timeout: 60_000,
    env: { NO_COLOR: '1' },
  });
  if (r.exitCode !== 0) throw new Error(`${bin} ${args.join(' ')} exited ${r.exitCode}: ${r.stderr}`);
  const line = /^LOADED (.*)$/m.exec(r.stderr)?.[1];
  if (line === undefined) throw new Error(`the load hook printed nothing: ${r.stderr}`);
  return (JSON.parse(line) as string[])
    .filter((u) => u.startsWith('file:'))
    .map((u) => relative(ROOT, fileURLToPath(u)));
}

for (const bin of Object.keys(BINS) as (keyof typeof BINS)[]) {
  for (const args of [['--help'], ['--version']]) {
    test(`${bin} ${args[0]} loads no verb module and no heavy dependency`, async (t) => {
      const dir = await tempDir(t);
      const hook = join(dir, 'hook.mjs');
      await writeFile(hook, HOOK);
      const files = await loaded(hook, bin, args);
      // The hook sees the entry itself: a hook that saw nothing would pass any check below.
      t.true(
        files.some((f) => f === relative(ROOT, BINS[bin])),
        files.join('\n'),
      );
      // The agent's root command runs the agent, so its flag table (run-args.ts) is the root's own.
      const verbs = files.filter(
        (f) =>
          /\/cli\/(?!index\.ts$)[^/]+\.ts$/.test(f) &&
          f !== 'agent/cli/run-args.ts' &&
          !f.startsWith('common/'),
      );
      t.deepEqual(verbs, [], `verb modules loaded by ${bin} ${args[0]}`);
      const heavy = files.filter((f) => HEAVY.some((h) => f.includes(`node_modules/${h}`)));
      t.deepEqual(heavy, [], `heavy dependencies loaded by ${bin} ${args[0]}`);
    });
  }
}

test('a verb --help loads that verb, and only that one of its siblings', async (t) => {
  const dir = await tempDir(t);
  const hook = join(dir, 'hook.mjs');
  await writeFile(hook, HOOK);
  const files = await loaded(hook, 'mway-layer', ['inspect', '--help']);
  t.true(files.includes('layers/cli/inspect.ts'));
  for (const sibling of ['pack', 'sign', 'verify', 'extract', 'import-oci', 'init'])
    t.false(files.includes(`layers/cli/${sibling}.ts`), sibling);
});
