// A real interactive shell on a pseudo-terminal (util-linux `script`) for the completion tests:
// keys typed as a person types them, the screen read back without escape sequences.
import { stripVTControlCharacters } from 'node:util';
import { execa } from 'execa';
import { ROOT } from '../helpers.ts';

export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** What the terminal shows, without escape sequences (window title included), bells and carriage returns. */
export function plain(raw: string): string {
  return stripVTControlCharacters(raw).replaceAll('\u0007', '').replaceAll('\r', '');
}

/** An interactive shell on a pseudo-terminal; `type` writes keys, `expect` waits for the screen. */
export function terminal(shell: string[], env: Record<string, string>) {
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
