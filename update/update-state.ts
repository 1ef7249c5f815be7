// The update state a machine keeps across boots (doc/how-to-update.md, "State"): the rollback
// floor — raised only when a slot passed its health gate (Android AVB's rule), so a replayed
// older bundle is refused — the trial in flight, the last slot marked good and why the last
// update was rolled back. One small versioned JSON file on a writable partition, written
// atomically; the lock beside it makes a second update wait its turn (E_SLOT_BUSY).
import { readFile, rm, writeFile } from 'node:fs/promises';
import { schema, stateVersionOf, writeJsonAtomic } from '../common/index.ts';
import { UpdateError } from './update-error.ts';

const { v, object, text, int } = schema;
export const UPDATE_STATE_VERSION = 1;

const slot = v.picklist(['a', 'b']);
const when = text({ max: 40 });
const stateSchema = object({
  version: v.literal(UPDATE_STATE_VERSION),
  rollbackFloor: int(0, 0xffff_ffff),
  trial: v.exactOptional(
    object({ slot, version: text({ max: 64 }), rollbackIndex: int(0, 0xffff_ffff), armedAt: when }),
  ),
  lastGood: v.exactOptional(object({ slot, version: text({ max: 64 }), at: when })),
  lastRollback: v.exactOptional(
    object({ slot, version: text({ max: 64 }), reason: text({ max: 1024 }), at: when }),
  ),
});
export type UpdateState = schema.Output<typeof stateSchema>;

const fresh = (): UpdateState => ({ version: UPDATE_STATE_VERSION, rollbackFloor: 0 });

export async function readUpdateState(path: string): Promise<UpdateState> {
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return fresh();
    throw new UpdateError('E_UPDATE_STATE', `Cannot read update state ${path}: ${(e as Error).message}`, {
      path,
      cause: e,
    });
  }
  let j: unknown;
  try {
    j = JSON.parse(raw);
  } catch (e) {
    throw new UpdateError('E_UPDATE_STATE', `Cannot read update state ${path}: not JSON`, { path, cause: e });
  }
  stateVersionOf(j, {
    what: 'update state',
    path,
    current: UPDATE_STATE_VERSION,
    isLegacy: () => false,
    error: (code, message, options) =>
      new UpdateError(code === 'E_STATE_CORRUPT' ? 'E_UPDATE_STATE' : code, message, options),
  });
  const r = schema.check(stateSchema, j);
  if (!r.ok)
    throw new UpdateError(
      'E_UPDATE_STATE',
      `Cannot read update state ${path}: ${r.issue.keyPath}: ${r.issue.problem}`,
      {
        path,
        details: { field: r.issue.keyPath },
      },
    );
  return r.value;
}

export async function writeUpdateState(path: string, s: UpdateState): Promise<void> {
  await writeJsonAtomic(path, s, 0o600);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Locks this process holds (the agent is PID 1 again after a reboot: its pid says nothing). */
const held = new Set<string>();

/** Runs `fn` holding `<statePath>.lock`; a live holder means an update is in progress. */
export async function withUpdateLock<T>(statePath: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${statePath}.lock`;
  if (held.has(lock))
    throw new UpdateError('E_SLOT_BUSY', 'An update is already in progress on this machine', { path: lock });
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(lock, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST')
          throw new UpdateError('E_SLOT_BUSY', 'An update is already in progress on this machine', {
            path: lock,
          });
        throw e;
      }
      const holder = Number.parseInt(await readFile(lock, 'utf8').catch(() => ''), 10);
      if (Number.isSafeInteger(holder) && holder > 0 && holder !== process.pid && alive(holder))
        throw new UpdateError(
          'E_SLOT_BUSY',
          `An update is already in progress on this machine (pid ${holder})`,
          {
            path: lock,
          },
        );
      // A holder that died (kill -9, power cut): its lock is stale.
      await rm(lock, { force: true });
    }
  }
  held.add(lock);
  try {
    return await fn();
  } finally {
    held.delete(lock);
    await rm(lock, { force: true });
  }
}
