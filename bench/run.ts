// `npm run bench -- NAME…`: runs bench/NAME.ts (all of them with no name). Each
// benchmark prints our figure, the reference tool's figure measured in the same run,
// and their ratio. Results are written to doc/performance.md by hand.
import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const available = (await readdir(here))
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .map((f) => f.slice(0, -3))
  .sort();
// A bare word is a benchmark name, unless it follows an option and names no benchmark:
// then it is that option's value (`--rounds 1` as well as `--rounds=1`). After an option whose
// values are words that may also name a benchmark (`fleet --transport nats`), it is the value.
const WORD_OPTIONS = ['--transport'];
const args = process.argv.slice(2);
const wanted = args.filter((a, i) => {
  const before = args[i - 1] ?? '';
  if (a.startsWith('-') || WORD_OPTIONS.includes(before)) return false;
  return available.includes(a) || !before.startsWith('-');
});
const names = wanted.length === 0 ? available : wanted;
for (const name of names) {
  if (!available.includes(name)) {
    process.stderr.write(
      `bench: E_BENCH_UNKNOWN: no benchmark named ${name} (have: ${available.join(', ')})\n`,
    );
    process.exitCode = 2;
    continue;
  }
  process.stdout.write(`\n## bench ${name}\n`);
  const mod = (await import(join(here, `${name}.ts`))) as { run?: (argv: string[]) => Promise<void> };
  if (typeof mod.run !== 'function') throw new Error(`bench/${name}.ts does not export run()`);
  await mod.run(process.argv.slice(2));
}
