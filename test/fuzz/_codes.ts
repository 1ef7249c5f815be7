// The error codes the docs promise: every `E_…` code written in backticks in doc/errors-*.md,
// with the `E_MEMBERSHIP_INVALID` / `_REVOKED` shorthand expanded. The mutation harness
// refuses any refusal whose code is not in this set, so a new code must be documented first.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers.ts';

export function documentedCodes(): Set<string> {
  const out = new Set<string>();
  const dir = join(ROOT, 'doc');
  for (const f of readdirSync(dir).filter((n) => /^errors-.*\.md$/.test(n))) {
    const text = readFileSync(join(dir, f), 'utf8');
    for (const line of text.split('\n')) {
      let last: string | undefined;
      for (const m of line.matchAll(/`(E_[A-Z0-9_]+|_[A-Z0-9_]+)`(?!\*)/g)) {
        const token = m[1] as string;
        if (token.startsWith('E_')) {
          out.add(token);
          last = token;
        } else if (last !== undefined) {
          // `E_MEMBERSHIP_PEER` / `_MALFORMED` → E_MEMBERSHIP_MALFORMED
          out.add(`${last.slice(0, last.lastIndexOf('_'))}${token}`);
        }
      }
    }
  }
  return out;
}
