// `mway completion zsh` in the real shell (Debian's zsh 5.9, package zsh): an interactive
// `zsh -f` on a pseudo-terminal (util-linux `script`) runs compinit, sources the script as
// doc/cli.md says, and completes verbs and flags when TAB is typed, as the bash test does.
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import test from 'ava';
import { execa } from 'execa';
import { BINS, ROOT, tempDir } from '../helpers.ts';

const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** What the terminal shows, without escape sequences (window title included), bells and carriage returns. */
function plain(raw: string): string {
  return stripVTControlCharacters(raw).replaceAll('\u0007', '').replaceAll('\r', '');
}

/** An interactive bash on a pseudo-terminal; `type` writes keys, `expect` waits for the screen. */
function terminal(shell: string[], env: Record<string, string>) {
  const child = execa('script', ['-qfec', shell.join(' '), '/dev/null'], {
    env,
    extendEnv: false,
    cwd: ROOT,
    timeout: 240_000,
    reject: false,
    stdin: 'pipe',
  });
  let raw = '';
  child.stdout?.on('data', (d: Buffer) => {
    raw += d.toString();
  });
  let exited = false;
  void child.then(() => {
    exited = true;
  });
  let mark = 0;
  return {
    /** Types `keys`; what `expect` then sees starts here. */
    type(keys: string): void {
      mark = raw.length;
      child.stdin?.write(keys);
    },
    /** Resolves with the screen since the last `type` once it matches `re`. */
    async expect(re: RegExp, what: string): Promise<string> {
      const end = Date.now() + 90_000;
      for (;;) {
        const seen = plain(raw.slice(mark));
        if (re.test(seen)) return seen;
        if (Date.now() > end || exited)
          throw new Error(
            `${what}: ${re} not on the screen (script exited: ${exited}); it shows:\n${plain(raw).slice(-2000)}`,
          );
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    screen: () => plain(raw),
    /** Ends the shell (a bash left reading would keep `script` waiting). */
    async close(): Promise<void> {
      if (!exited) child.stdin?.end('\u0015exit\n');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await child;
      clearTimeout(killer);
    },
  };
}

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
