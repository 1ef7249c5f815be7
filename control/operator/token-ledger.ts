// The autosigner's count of enrollment-token uses (`<mway config>/enroll-tokens.json`): which
// request ids each token was spent on. It is the authority on uses — the broker only relays
// requests and could present one token many times — so it is written before the certificate
// is issued (a crash loses a use, never grants an extra one) and an unreadable ledger stops
// autosigning instead of starting again from zero. A request already in the ledger is the
// same machine asked again (same key, same request id) and costs nothing.
//
// On disk: `{"version": 1, "tokens": {"<token id>": ["<request id>", …]}}`.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stateVersionOf, writeJsonAtomic } from '../../common/index.ts';
import { ControlError } from '../wire/index.ts';
import { OperatorError } from './operator-error.ts';
import { lockFile } from './operator-seq.ts';

export const TOKEN_LEDGER_VERSION = 1;

export function tokenLedgerFile(dir: string): string {
  return join(dir, 'enroll-tokens.json');
}

async function read(file: string): Promise<Record<string, string[]>> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new OperatorError(
      'E_CONFIG',
      `Cannot read the enrollment token ledger ${file}: ${(e as Error).message}`,
      {
        path: file,
        cause: e,
      },
    );
  }
  stateVersionOf(raw, {
    what: 'enrollment token ledger',
    path: file,
    current: TOKEN_LEDGER_VERSION,
    isLegacy: () => false,
    error: (code, message, options) => new OperatorError(code, message, options),
  });
  const tokens = (raw as { tokens?: unknown }).tokens;
  if (
    typeof tokens !== 'object' ||
    tokens === null ||
    !Object.values(tokens).every((v) => Array.isArray(v) && v.every((x) => typeof x === 'string'))
  ) {
    throw new OperatorError(
      'E_CONFIG',
      `Enrollment token ledger ${file}: tokens is not {id: [request ids]}`,
      {
        path: file,
      },
    );
  }
  return tokens as Record<string, string[]>;
}

/**
 * Spends one use of token `id` (at most `uses`) on `requestId`; throws E_ENROLL_TOKEN_USED
 * when every use went to other requests. Returns how many uses are spent now.
 */
export async function spendTokenUse(
  dir: string,
  id: string,
  requestId: string,
  uses: number,
): Promise<number> {
  const file = tokenLedgerFile(dir);
  const release = await lockFile(`${file}.lock`);
  try {
    const tokens = await read(file);
    const spent = tokens[id] ?? [];
    if (spent.includes(requestId)) return spent.length;
    if (spent.length >= uses) {
      throw new ControlError(
        'E_ENROLL_TOKEN_USED',
        `Enrollment token ${id} is used up: ${spent.length} of ${uses} use(s) went to other machines`,
      );
    }
    tokens[id] = [...spent, requestId];
    await writeJsonAtomic(file, { version: TOKEN_LEDGER_VERSION, tokens });
    return spent.length + 1;
  } finally {
    await release();
  }
}
