// `mway completion fish` in the real shell (Debian's fish 3.6, package fish): the script loads,
// and fish's own completer (`complete -C`, what TAB runs) completes verbs, nested verbs and
// flags from it. The script text alone passed before while no condition ever held in fish.
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { BINS, tempDir } from '../helpers.ts';

test('fish loads mway completion fish and completes verbs, nested verbs and flags', async (t) => {
  const fish = await execa('fish', ['--version'], { reject: false, timeout: 10_000 }).catch(() => undefined);
  if (fish === undefined || fish.exitCode !== 0) {
    t.fail('fish is missing: install the Debian package fish (scripts/setup.sh does)');
    return;
  }
  const d = await tempDir(t);
  const script = join(d, 'mway.fish');
  const gen = await execa(process.execPath, [BINS.mway, 'completion', 'fish'], { timeout: 60_000 });
  await writeFile(script, gen.stdout);
  // The command on PATH, as after setup (fish completes for a command name, not a path).
  await writeFile(join(d, 'mway'), `#!/bin/sh\nexec '${process.execPath}' '${BINS.mway}' "$@"\n`);
  await chmod(join(d, 'mway'), 0o755);
  const complete = async (line: string): Promise<string[]> => {
    const r = await execa('fish', ['--no-config', '-c', `source ${script}; complete -C '${line}'`], {
      env: { PATH: `${d}:${process.env.PATH ?? ''}`, HOME: d },
      timeout: 60_000,
    });
    return String(r.stdout)
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.split('\t')[0] as string);
  };
  t.deepEqual(await complete('mway gro'), ['group']);
  t.true((await complete('mway group a')).includes('add'));
  t.true((await complete('mway status --js')).includes('--json'));
  t.true((await complete('mway peers token ')).includes('create'));
  // A flag of another verb is not offered.
  t.false((await complete('mway jobs --')).includes('--verify'));
});
