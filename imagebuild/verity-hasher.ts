// Hashes a file's data blocks for dm-verity on all cores: a pool of worker threads,
// each reading and hashing runs of blocks, digests handed back in order with bounded
// read-ahead so memory stays flat whatever the file size.
import { hash } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ImageError } from './image-error.ts';
import { BlockHasher } from './verity-block-hash.ts';
import type { HashReply, HashTask } from './verity-hash-worker.ts';
import { VERITY_BLOCK_SIZE } from './verity-geometry.ts';

/** Blocks per worker message: 2 MiB of data, 16 KiB of digests. */
const TASK_BLOCKS = 512;
/** Below this many blocks, starting workers costs more than it saves. */
const INLINE_MAX_BLOCKS = 4096;

export interface HashOptions {
  /** Worker threads; default: available cores. 0 hashes on the calling thread. */
  threads?: number;
}

/** sha256(salt ‖ block) of one block, the dm-verity format-1 digest. */
export function verityDigest(salt: Uint8Array, block: Uint8Array): Uint8Array {
  return new Uint8Array(hash('sha256', Buffer.concat([salt, block]), 'buffer'));
}

/**
 * Yields the digests of data blocks [0, count) of `path`, in order, in chunks of
 * 32-byte digests.
 */
export async function* hashDataBlocks(
  path: string,
  count: number,
  salt: Uint8Array,
  options: HashOptions = {},
): AsyncGenerator<Uint8Array> {
  const threads = options.threads ?? Math.max(1, availableParallelism());
  if (threads === 0 || count <= INLINE_MAX_BLOCKS) {
    yield* hashInline(path, count, salt);
    return;
  }
  yield* hashWithWorkers(path, count, salt, Math.min(threads, Math.ceil(count / TASK_BLOCKS)));
}

async function* hashInline(path: string, count: number, salt: Uint8Array): AsyncGenerator<Uint8Array> {
  const fd = openSync(path, 'r');
  try {
    const hasher = new BlockHasher(salt, Math.min(TASK_BLOCKS, count));
    for (let first = 0; first < count; first += TASK_BLOCKS) {
      const n = Math.min(TASK_BLOCKS, count - first);
      const out = Buffer.alloc(n * 32);
      const got = hasher.hashRange(fd, first * VERITY_BLOCK_SIZE, n, out);
      if (got < n * VERITY_BLOCK_SIZE) throw shortRead(path, first * VERITY_BLOCK_SIZE + got);
      yield new Uint8Array(out.buffer, out.byteOffset, out.length);
    }
  } finally {
    closeSync(fd);
  }
}

function shortRead(path: string, at: number): ImageError {
  return new ImageError('E_VERITY_DATA_SHORT', `Cannot hash ${path}: file ends at byte ${at}`, { path });
}

async function* hashWithWorkers(
  path: string,
  count: number,
  salt: Uint8Array,
  threads: number,
): AsyncGenerator<Uint8Array> {
  const url = new URL('./verity-hash-worker.ts', import.meta.url);
  const workers = Array.from(
    { length: threads },
    () => new Worker(url, { workerData: { path, salt, maxBlocks: TASK_BLOCKS } }),
  );
  const tasks = Math.ceil(count / TASK_BLOCKS);
  const done = new Map<number, Uint8Array>();
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  let nextTask = 0;
  const send = (w: Worker) => {
    if (nextTask >= tasks) return;
    const id = nextTask++;
    const first = id * TASK_BLOCKS;
    const task: HashTask = {
      id,
      offset: first * VERITY_BLOCK_SIZE,
      count: Math.min(TASK_BLOCKS, count - first),
    };
    w.postMessage(task);
  };
  for (const w of workers) {
    w.on('message', (r: HashReply) => {
      if ('error' in r) failure ??= shortOrRead(path, r.error);
      else done.set(r.id, r.digests);
      wake?.();
    });
    w.on('error', (e) => {
      failure ??= e;
      wake?.();
    });
    // Two tasks in flight per worker keep it busy while the main thread consumes.
    send(w);
    send(w);
  }
  const owner = new Map<number, Worker>();
  for (let id = 0; id < Math.min(tasks, threads * 2); id++)
    owner.set(id, workers[Math.floor(id / 2)] as Worker);
  try {
    for (let id = 0; id < tasks; id++) {
      while (!done.has(id) && failure === undefined) await new Promise<void>((r) => (wake = r));
      if (failure !== undefined) throw failure;
      const digests = done.get(id) as Uint8Array;
      done.delete(id);
      const w = owner.get(id) as Worker;
      owner.delete(id);
      if (nextTask < tasks) owner.set(nextTask, w);
      send(w);
      yield digests;
    }
  } finally {
    for (const w of workers) w.postMessage(null);
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

function shortOrRead(path: string, message: string): ImageError {
  if (message.startsWith('short read')) {
    return new ImageError('E_VERITY_DATA_SHORT', `Cannot hash ${path}: ${message}`, { path });
  }
  return new ImageError('E_VERITY_READ', `Cannot hash ${path}: ${message}`, { path });
}
