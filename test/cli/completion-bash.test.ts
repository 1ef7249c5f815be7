// Shell completion as a new user gets it (doc/cli.md, "Completion and man pages"; the README's
// quick start): a HOME made from Debian's /etc/skel, the two install steps scripts/setup.sh runs
// (install-bin.sh, install-docs.sh, with the paths a non-root user gets), then a fresh login bash
// on a real pseudo-terminal (util-linux `script`) with TAB typed as a person types it. Bash's own
// readline and the bash-completion package (its on-demand loader) do the completing, so what is
// checked is what lands on the command line, not what our function returns when called by hand.
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { ROOT } from '../helpers.ts';
import { SYSTEM_PATH, terminal } from './_terminal.ts';

/** A new Debian user's HOME with the five commands, their man pages and completions installed. */
async function newUser(): Promise<Record<string, string>> {
  const home = await mkdtemp(join(tmpdir(), 'mway-home-'));
  for (const f of ['.bashrc', '.profile']) await copyFile(join('/etc/skel', f), join(home, f));
  const env = { HOME: home, PATH: SYSTEM_PATH, TERM: 'xterm', LANG: 'C.UTF-8' };
  // As setup.sh runs them; the directories are the ones a non-root user gets by default.
  await execa(join(ROOT, 'scripts/install-bin.sh'), [], {
    env: { ...env, MWAY_BIN_DIR: join(home, '.local/bin') },
    extendEnv: false,
    timeout: 60_000,
  });
  await execa(join(ROOT, 'scripts/install-docs.sh'), [], {
    env: { ...env, MWAY_DOC_PREFIX: join(home, '.local') },
    extendEnv: false,
    timeout: 120_000,
  });
  return env;
}

const PROMPT = /[#$] $/;
// One HOME for both shells: the install (fifteen generated completion scripts) is the slow part.
const user = newUser();
test.after.always(async () => rm((await user).HOME as string, { recursive: true, force: true }));

test('a new login bash completes the installed commands through bash-completion, and they run', async (t) => {
  const env = await user;
  const sh = terminal(['bash', '--login', '-i'], env);
  t.teardown(() => sh.close());
  await sh.expect(PROMPT, 'the first prompt');

  // The shims from ~/.local/bin come first on PATH (Debian's ~/.profile adds it).
  sh.type('type -P mway mway-image\n');
  const where = await sh.expect(/mway-image\n[\s\S]*[#$] $/, 'type -P');
  t.true(where.includes(join(env.HOME as string, '.local/bin/mway\n')), where);

  // The README's step 2 command, completed word by word, then run (--print-spec builds nothing).
  sh.type('mway-image bui\t');
  await sh.expect(/mway-image build $/, 'mway-image bui<TAB>');
  sh.type('--print-s\t');
  await sh.expect(/--print-spec $/, '--print-s<TAB>');
  sh.type('\n');
  const spec = await sh.expect(/\n}\n[\s\S]*[#$] $/, 'mway-image build --print-spec');
  t.regex(spec, /"architecture": "x86_64"/);

  // Nested verbs and a verb's flags of mway, and another binary's.
  sh.type('mway gro\t');
  await sh.expect(/mway group $/, 'mway gro<TAB>');
  sh.type('a\t');
  await sh.expect(/add $/, 'mway group a<TAB>');
  sh.type('\u0015mway status --js\t');
  await sh.expect(/--json $/, 'mway status --js<TAB>');
  sh.type('\u0015mway-layer ver\t');
  await sh.expect(/mway-layer verify $/, 'mway-layer ver<TAB>');
  sh.type('--tr\t');
  await sh.expect(/--trust $/, 'mway-layer verify --tr<TAB>');
  // The functions came from this user's install (bash-completion's loader read them from
  // ~/.local/share/bash-completion/completions), not from a system-wide copy.
  sh.type('\u0015shopt -s extdebug; declare -F _mway_image _mway_layer _mway\n');
  const from = await sh.expect(/_mway \d+ \S+\n[\s\S]*[#$] $/, 'declare -F');
  for (const bin of ['mway-image', 'mway-layer', 'mway'])
    t.true(
      from.includes(` ${join(env.HOME as string, '.local/share/bash-completion/completions', bin)}\n`),
      `${bin}: ${from}`,
    );
  // Two TABs on an ambiguous word list the choices, as bash does for any command.
  sh.type('\u0015mway-image bu\t\t');
  await sh.expect(/build\s+bundle/, 'mway-image bu<TAB><TAB>');
  await sh.close();
  t.notRegex(sh.screen(), /command not found|No such file|syntax error/);
});

test('source <(mway completion bash) enables completion in a bash without bash-completion', async (t) => {
  const env = await user;
  // --norc: no bash-completion loaded; the shims' folder put on PATH by hand.
  const sh = terminal(['bash', '--norc', '--noprofile', '-i'], {
    ...env,
    PATH: `${join(env.HOME as string, '.local/bin')}:${SYSTEM_PATH}`,
  });
  t.teardown(() => sh.close());
  await sh.expect(PROMPT, 'the first prompt');
  sh.type('complete -p mway\n');
  t.regex(await sh.expect(/\n.*[#$] $/, 'complete -p'), /no completion specification/);
  sh.type('source <(mway completion bash)\n');
  const sourced = await sh.expect(/\n.*[#$] $/, 'source');
  t.is(sourced.split('\n').length, 2, `sourcing prints nothing: ${sourced}`);
  sh.type('mway sta\t');
  await sh.expect(/mway status $/, 'mway sta<TAB>');
  sh.type('\u0015mway group a\t');
  await sh.expect(/mway group add $/, 'mway group a<TAB>');
  await sh.close();
});
