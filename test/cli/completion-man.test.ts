// Completion and man pages come from the command trees: the committed man/*.1 are what the
// generator writes now (drift), every verb has its section, groff reads them without a warning,
// and the bash script, sourced in a real bash, completes verbs and flags from the tree.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { commandTree, manPage, type VerbNode } from '../../common/cli-docs.ts';
import { manRoots } from '../../scripts/man-roots.ts';
import { BINS, ROOT } from '../helpers.ts';

const roots = await manRoots();

function verbs(n: VerbNode): VerbNode[] {
  return [n, ...n.subs.flatMap(verbs)];
}

for (const [bin, root] of Object.entries(roots)) {
  test(`man/${bin}.1 is generated from the tree (npm run docs:man) and has every verb`, async (t) => {
    const tree = await commandTree(root);
    const page = await readFile(join(ROOT, 'man', `${bin}.1`), 'utf8');
    t.is(page, manPage(tree, '0.1.0'), 'run npm run docs:man');
    for (const v of verbs(tree).slice(1))
      t.true(page.includes(`.SS "${v.path.join(' ').replace(/-/g, '\\-')}"`), v.path.join(' '));
    const g = await execa('groff', ['-man', '-ww', '-z', join(ROOT, 'man', `${bin}.1`)], {
      reject: false,
      timeout: 30_000,
    });
    t.is(g.exitCode, 0);
    t.is(String(g.stderr), '');
  });
}

async function complete(bin: keyof typeof BINS, words: string[]): Promise<string[]> {
  const script = `source <("${process.execPath}" "${BINS[bin]}" completion bash)
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}
_${bin.replace(/-/g, '_')}; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = await execa('bash', ['--norc', '-c', script], { timeout: 60_000, cwd: ROOT });
  return String(r.stdout)
    .split('\n')
    .filter((l) => l !== '');
}

test('bash completion completes verbs, nested verbs and flags from the tree; after -- only files', async (t) => {
  t.deepEqual(await complete('mway', ['mway', 'gro']), ['group']);
  t.deepEqual(await complete('mway', ['mway', 'group', 'a']), ['add']);
  t.deepEqual(await complete('mway', ['mway', 'status', '--js']), ['--json']);
  t.true((await complete('mway-layer', ['mway-layer', 'verify', '--']))?.includes('--trust'));
  t.deepEqual(await complete('milkywaysrvd', ['milkywaysrvd', 'check']), ['check-config']);
  t.deepEqual(await complete('mway', ['mway', 'run', '--group', 'web', '--', 'ls', '--js']), []);
  t.deepEqual(await complete('mway', ['mway', 'run', '--group', 'web', '--', 'package.']), ['package.json']);
});

test('completion zsh and fish print scripts their shells can load; a bad shell is E_USAGE', async (t) => {
  const run = (args: string[]) =>
    execa(process.execPath, [BINS.mway, ...args], { reject: false, timeout: 60_000, env: { NO_COLOR: '1' } });
  const z = await run(['completion', 'zsh']);
  t.is(z.exitCode, 0);
  t.regex(String(z.stdout), /^#compdef mway\n/);
  const f = await run(['completion', 'fish']);
  t.is(f.exitCode, 0);
  t.regex(String(f.stdout), /complete -c mway -f -n .* -a 'group'/);
  const bad = await run(['completion', 'tcsh']);
  t.is(bad.exitCode, 2);
  t.regex(String(bad.stderr), /E_USAGE: Unknown shell tcsh/);
});

test('scripts/install-docs.sh installs man pages man finds and completions bash loads', async (t) => {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const prefix = await mkdtemp(join((await import('node:os')).tmpdir(), 'mway-docs-'));
  t.teardown(() => rm(prefix, { recursive: true, force: true }));
  await execa(join(ROOT, 'scripts/install-docs.sh'), [], {
    env: { MWAY_DOC_PREFIX: prefix, NODE_COMPILE_CACHE: join(prefix, 'compile-cache') },
    timeout: 120_000,
  });
  for (const bin of Object.keys(roots)) {
    const w = await execa('man', ['-w', bin], {
      env: { MANPATH: join(prefix, 'share/man') },
      timeout: 30_000,
    });
    t.is(String(w.stdout), join(prefix, 'share/man/man1', `${bin}.1`));
  }
  const r = await execa(
    'bash',
    [
      '--norc',
      '-c',
      `source ${prefix}/share/bash-completion/completions/mway; COMP_WORDS=(mway aud); COMP_CWORD=1; _mway; echo "\${COMPREPLY[*]}"`,
    ],
    { timeout: 30_000 },
  );
  t.is(String(r.stdout), 'audit');
});
