// What the tests that execute a how-to as written share: the page's commands, in order, and
// the mark each command's output section of the transcript starts with.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { execa } from 'execa';

/** Printed before each command, so the transcript splits into one section per command. */
export const MARK = '### mway-howto:';

/** The page's commands, in order: `\` continuations joined, heredocs kept whole, comments dropped. */
export async function pageCommands(doc: string): Promise<string[]> {
  const text = await readFile(doc, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const lines = (m[1] ?? '').replace(/\\\n\s*/g, '').split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i] as string;
      if (line.trim() === '' || line.trim().startsWith('#')) continue;
      const here = /<<'(\w+)'\s*$/.exec(line);
      if (here !== null) {
        const end = lines.indexOf(here[1] as string, i + 1);
        if (end < 0) throw new Error(`unterminated heredoc: ${line}`);
        out.push(lines.slice(i, end + 1).join('\n'));
        i = end;
      } else if (/^(for|while|if) /.test(line.trim())) {
        const end = lines.findIndex((l, k) => k > i && /^(done|fi)\b/.test(l.trim()));
        out.push(lines.slice(i, end + 1).join('\n'));
        i = end;
      } else out.push(line);
    }
  }
  return out;
}

/** `s` as one shell word. */
export const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** A page command's pattern and what its output section must show (nothing, one or several). */
export type Known = Array<[RegExp, RegExp | RegExp[] | undefined]>;

/**
 * Runs the page's commands as one `bash -euo pipefail` session in `dir`, inside a fresh
 * network, mount and PID namespace (the page's loopback ports are ours alone and whatever it
 * starts in the background ends with it), with `bin` (scripts/install-bin.sh's shims) first on
 * PATH. It asserts that the test knows every command, in order; that the session exited 0
 * without noise or an internal error; and that each command's section shows what `known` says.
 * Returns the sections, one per command, for the test's own checks beyond the page.
 */
export async function runPage(
  t: ExecutionContext,
  opts: {
    cmds: string[];
    known: Known;
    dir: string;
    bin: string;
    timeoutMs: number;
    logs: () => Promise<string>;
  },
): Promise<string[]> {
  const { cmds, known, dir, bin } = opts;
  t.deepEqual(
    cmds.map((c) => known.findIndex(([re]) => re.test(c))),
    known.map((_, i) => i),
    `the page's commands changed; teach this test what they do:\n${cmds.join('\n')}`,
  );
  const script = [
    'set -euo pipefail',
    ...cmds.flatMap((c) => [`printf '\\n%s%s\\n' ${quote(MARK)} ${quote(c.split('\n')[0] as string)}`, c]),
  ].join('\n');
  await writeFile(join(dir, 'howto.sh'), `${script}\n`);
  const r = await execa(
    'unshare',
    [
      '--net',
      '--mount',
      '--pid',
      '--fork',
      '--mount-proc',
      'bash',
      '-c',
      'ip link set lo up && exec bash howto.sh',
    ],
    {
      cwd: dir,
      reject: false,
      all: true,
      timeout: opts.timeoutMs,
      env: { PATH: `${bin}:${process.env.PATH ?? ''}`, HOME: join(dir, 'home'), MWAY_KEY_PASSPHRASE: '' },
      extendEnv: false,
    },
  );
  // MWAY_HOWTO_TRANSCRIPT=FILE keeps the session's output for a reader.
  if (process.env.MWAY_HOWTO_TRANSCRIPT !== undefined)
    await writeFile(process.env.MWAY_HOWTO_TRANSCRIPT, r.all);
  t.is(r.exitCode, 0, `${r.all.slice(-6000)}\n${await opts.logs()}`);
  t.notRegex(r.all, /ExperimentalWarning|E_INTERNAL/, 'no noise and no internal error on the way');
  const sections = r.all.split(`\n${MARK}`).slice(1);
  t.is(sections.length, cmds.length, 'every command ran');
  for (const [i, [re, want]] of known.entries()) {
    const sec = sections[i] ?? '';
    for (const w of want === undefined ? [] : Array.isArray(want) ? want : [want])
      t.regex(sec, w, `${re}: ${sec.slice(0, 3000)}`);
  }
  return sections;
}
