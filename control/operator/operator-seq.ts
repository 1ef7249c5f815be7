// The operator's sequence numbers (doc/commands.md, "Sequence numbers"): one counter per
// operator certificate in the mway config folder, `seq-<fingerprint prefix>.json`, plus 1 per
// command, so peers (which refuse a number used twice or more than SEQ_WINDOW behind the
// highest) never refuse normal use. Two `mway` processes sharing the folder take a lock file
// so they never hand out the same number.
//
// A missing counter starts at the current time in milliseconds: above any counter the same
// certificate reached before (that would need more than one command per millisecond since it
// started), so deleting the folder or a fresh `mway config init` does not get refused as
// reused. One certificate belongs to one machine: two counters for one certificate interleave
// and the lower one falls behind the window.
//
// On disk: `{"version": 1, "seq": N}`. Version 0 (`{"seq": N}`, before versions) is read and
// the next write is version 1; a newer version is refused (E_STATE_VERSION), never restarted.
import { mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { stateVersionOf, writeJsonAtomic } from '../../common/index.ts';
import { OperatorError } from './operator-error.ts';

const LOCK_WAIT_MS = 10_000;
/** A lock older than this was left by a process that died holding it. */
const STALE_LOCK_MS = 30_000;

/** The version of the counter file this `mway` writes. */
export const SEQ_FILE_VERSION = 1;

export function seqFile(dir: string, fingerprint: string): string {
  return join(dir, `seq-${fingerprint.slice(0, 16)}.json`);
}

/** Takes the lock file `path` (waits up to 10 s; a lock older than 30 s is taken over). */
export async function lockFile(path: string): Promise<() => Promise<void>> {
  const end = Date.now() + LOCK_WAIT_MS;
  for (let i = 0; ; i++) {
    try {
      const fh = await open(path, 'wx', 0o600);
      await fh.close();
      return () => rm(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    try {
      if (Date.now() - (await stat(path)).mtimeMs > STALE_LOCK_MS) await rm(path, { force: true });
    } catch {
      // Released meanwhile: try again.
    }
    if (Date.now() > end) {
      throw new OperatorError('E_CONFIG', `Lock ${path} held for ${LOCK_WAIT_MS / 1000} s`, {
        path,
      });
    }
    await new Promise((r) => setTimeout(r, Math.min(5 + i * 5, 50)));
  }
}

/** Allocates the next sequence number for the operator certificate `fingerprint`. */
export async function nextOperatorSeq(dir: string, fingerprint: string): Promise<number> {
  const file = seqFile(dir, fingerprint);
  // The config folder may not exist yet (an operator configured by environment or in tests).
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const release = await lockFile(`${file}.lock`);
  try {
    let n: number | undefined;
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(file, 'utf8'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && !(e instanceof SyntaxError)) throw e;
    }
    if (typeof raw === 'object' && raw !== null) {
      // A newer counter file is refused: its numbering may not be ours to continue.
      stateVersionOf(raw, {
        what: 'sequence counter',
        path: file,
        current: SEQ_FILE_VERSION,
        isLegacy: (r) => typeof r === 'object' && r !== null && !('version' in r),
        error: (code, message, options) => new OperatorError(code, message, options),
      });
      const v = (raw as { seq?: unknown }).seq;
      if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) n = v;
    }
    // Unreadable or missing: restart above anything this certificate can have used (this
    // loses nothing: peers only refuse numbers at or below what they saw).
    const next = n === undefined ? Date.now() : n + 1;
    await writeJsonAtomic(file, { version: SEQ_FILE_VERSION, seq: next });
    return next;
  } finally {
    await release();
  }
}
