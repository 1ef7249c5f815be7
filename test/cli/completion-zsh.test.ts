// `mway completion zsh` in the real shell (Debian's zsh 5.9, package zsh): an interactive
// `zsh -f` on a pseudo-terminal (util-linux `script`) runs compinit, sources the script as
// doc/cli.md says, and completes verbs and flags when TAB is typed, as the bash test does.
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { BINS, tempDir } from '../helpers.ts';
import { SYSTEM_PATH, terminal } from './_terminal.ts';

/** A new Debian user's HOME with the five commands, their man pages and completions installed. */
test('zsh loads mway completion zsh and completes verbs and flags on TAB', async (t) => {
  const zsh = await execa('zsh', ['--version'], { reject: false, timeout: 10_000 }).catch(() => undefined);
  if (zsh === undefined || zsh.exitCode !== 0) {
    t.fail('zsh is missing: install the Debian package zsh (scripts/setup.sh does)');
    return;
  }
  const d = await tempDir(t);
  await writeFile(join(d, 'mway'), `#!/bin/sh\nexec '${process.execPath}' '${BINS.mway}' "$@"\n`);
  await chmod(join(d, 'mway'), 0o755);
  const env = { PATH: `${d}:${SYSTEM_PATH}`, HOME: d, TERM: 'xterm', NO_COLOR: '1', PS1: 'ZP> ' };
  const sh = terminal(['zsh', '-f', '-i'], env);
  t.teardown(() => sh.close());
  sh.type("PS1='ZP> '; autoload -U compinit && compinit -u; source <(mway completion zsh); echo loaded\n");
  await sh.expect(/loaded\n[\s\S]*ZP> $/, 'the script loaded');
  sh.type('mway gro\t');
  await sh.expect(/oup/, 'mway gro<TAB>');
  sh.type(' a\t');
  await sh.expect(/add/, 'mway group a<TAB>');
  sh.type('\u0015mway status --js\t');
  await sh.expect(/--json/, 'mway status --js<TAB>');
  t.pass();
});
