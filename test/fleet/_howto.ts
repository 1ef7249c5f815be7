// What the tests that execute a how-to as written share: the page's commands, in order, and
// the mark each command's output section of the transcript starts with.
import { readFile } from 'node:fs/promises';

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
