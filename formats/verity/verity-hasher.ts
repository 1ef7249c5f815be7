// Hashes a file's data blocks for dm-verity on all cores: the calling thread and a pool of
// worker threads each read and hash runs of blocks (tasks), taken in file order from one
// queue; digests are handed back in order with a bounded read-ahead window, so memory
// stays flat whatever the file size.
import { hash } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { BLOCK_SIZE } from '../block-size.ts';
import { FormatError } from '../format-error.ts';
import { BlockHasher } from './verity-block-hash.ts';
import {
  type HashReply,
  type HashTask,
  type HashWorkerData,
  hashWorkerSource,
} from './verity-hash-worker.ts';

/**
 * Blocks per task: 2 MiB of data read with one readv (at most IOV_MAX = 1024 slots), 16 KiB
 * of digests. Small enough that the calling thread, which also hashes, answers worker
 * messages within ~2 ms; 1 MiB to 4 MiB measured the same.
 */
const TASK_BLOCKS = 512;
/** Tasks handed out ahead of the one the consumer waits for: 128 MiB of data, 1 MiB of digests. */
const WINDOW = 64;
/** Tasks queued at each worker, so it never waits for a message round trip. */
const QUEUED = 3;
/** Below this many blocks (16 MiB), a worker's start-up (~25 ms) costs more than it saves. */
const INLINE_MAX_BLOCKS = 4096;

export interface HashOptions {
  /** Threads hashing, the calling thread included; default: available cores. 0 or 1: the calling thread alone. */
  threads?: number;
}

export interface HashDataOptions extends HashOptions {
  /** Byte offset of data block 0 in the file (a payload inside a container); default 0. */
  offset?: number;
}

/** sha256(salt ‖ block) of one block, the dm-verity format-1 digest. */
export function verityDigest(salt: Uint8Array, block: Uint8Array): Uint8Array {
  return new Uint8Array(hash('sha256', Buffer.concat([salt, block]), 'buffer'));
}

/**
 * Yields the digests of data blocks [0, count) of `path` (block 0 at byte `offset`), in
 * order, in chunks of 32-byte digests.
 */
export async function* hashDataBlocks(
  path: string,
  count: number,
  salt: Uint8Array,
  options: HashDataOptions = {},
): AsyncGenerator<Uint8Array> {
  const threads = options.threads ?? Math.max(1, availableParallelism());
  const offset = options.offset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0)
    throw new RangeError(`Expected a non-negative data offset, got ${offset}`);
  const tasks = Math.ceil(count / TASK_BLOCKS);
  const workers = count <= INLINE_MAX_BLOCKS ? 0 : Math.max(0, Math.min(threads, tasks) - 1);
  yield* hashTasks(path, offset, count, salt, workers);
}

function shortRead(path: string, at: number): FormatError {
  return new FormatError('E_VERITY_DATA_SHORT', `Cannot hash ${path}: file ends at byte ${at}`, { path });
}

async function* hashTasks(
  path: string,
  base: number,
  count: number,
  salt: Uint8Array,
  nWorkers: number,
): AsyncGenerator<Uint8Array> {
  // Workers start first: the calling thread hashes while they boot.
  const data: HashWorkerData = { path, salt, maxBlocks: TASK_BLOCKS };
  const source = nWorkers > 0 ? hashWorkerSource() : '';
  const workers = Array.from(
    { length: nWorkers },
    () => new Worker(source, { eval: true, workerData: data }),
  );
  const tasks = Math.ceil(count / TASK_BLOCKS);
  const done = new Map<number, Uint8Array>();
  const queued = new Map<Worker, number>(workers.map((w) => [w, 0]));
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  let nextTask = 0;
  let consumed = 0;
  let closing = false;
  /** The next task in file order, unless all are out or the read-ahead window is full. */
  const take = (): HashTask | undefined => {
    if (nextTask >= tasks || nextTask - consumed >= WINDOW) return undefined;
    const id = nextTask++;
    const first = id * TASK_BLOCKS;
    return { id, offset: base + first * BLOCK_SIZE, count: Math.min(TASK_BLOCKS, count - first) };
  };
  const feed = (w: Worker): void => {
    while ((queued.get(w) ?? 0) < QUEUED) {
      const task = take();
      if (task === undefined) return;
      queued.set(w, (queued.get(w) ?? 0) + 1);
      w.postMessage(task);
    }
  };
  for (const w of workers) {
    w.on('message', (r: HashReply) => {
      queued.set(w, (queued.get(w) ?? 1) - 1);
      if ('error' in r) failure ??= shortOrRead(path, r.error);
      else done.set(r.id, r.digests);
      feed(w);
      wake?.();
    });
    w.on('error', (e) => {
      failure ??= e;
      wake?.();
    });
    // A worker gone before we close the pool would leave its tasks unanswered.
    w.on('exit', (code) => {
      if (!closing) failure ??= shortOrRead(path, `hash worker exited with code ${code}`);
      wake?.();
    });
    feed(w);
  }
  const fd = openSync(path, 'r');
  const hasher = new BlockHasher(salt, Math.min(TASK_BLOCKS, count));
  try {
    for (; consumed < tasks; consumed++) {
      while (!done.has(consumed) && failure === undefined) {
        const task = take();
        if (task === undefined) {
          await new Promise<void>((r) => (wake = r));
          continue;
        }
        // The calling thread hashes a task whenever it would otherwise wait.
        const out = Buffer.allocUnsafeSlow(task.count * 32);
        const got = hasher.hashRange(fd, task.offset, task.count, out);
        if (got < task.count * BLOCK_SIZE) throw shortRead(path, task.offset + got);
        done.set(task.id, new Uint8Array(out.buffer, out.byteOffset, out.length));
        // Let worker replies in (and refill their queues) before hashing more.
        if (nWorkers > 0) await new Promise<void>((r) => setImmediate(r));
      }
      if (failure !== undefined) throw failure;
      const digests = done.get(consumed) as Uint8Array;
      done.delete(consumed);
      for (const w of workers) feed(w);
      yield digests;
    }
  } finally {
    closing = true;
    closeSync(fd);
    for (const w of workers) w.postMessage(null);
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

function shortOrRead(path: string, message: string): FormatError {
  if (message.startsWith('short read')) {
    return new FormatError('E_VERITY_DATA_SHORT', `Cannot hash ${path}: ${message}`, { path });
  }
  return new FormatError('E_VERITY_READ', `Cannot hash ${path}: ${message}`, { path });
}
