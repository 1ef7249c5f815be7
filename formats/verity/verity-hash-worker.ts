// Worker thread hashing runs of dm-verity data blocks: sha256(salt ‖ block) for each
// 4096-byte block of a file range it reads itself, so data never crosses threads.
//
// The worker runs from a source string assembled from `BlockHasher` and `workerMain` below
// (common/eval-worker.ts says why), not from this .ts file.
import { closeSync, openSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { evalWorkerSource } from '../../common/index.ts';
import { BLOCK_SIZE } from '../block-size.ts';
import { BlockHasher } from './verity-block-hash.ts';

export interface HashTask {
  id: number;
  /** Byte offset of the first block in the file. */
  offset: number;
  count: number;
}

export type HashReply = { id: number; digests: Uint8Array } | { id: number; error: string };

export interface HashWorkerData {
  path: string;
  salt: Uint8Array;
  maxBlocks: number;
}

/** The worker's body; runs inside the worker with the names it uses bound by `hashWorkerSource`. */
function workerMain(Hasher: typeof BlockHasher): void {
  const { path, salt, maxBlocks } = workerData as HashWorkerData;
  const port = parentPort;
  if (port === null) throw new Error('verity hash worker must run as a worker thread');
  const fd = openSync(path, 'r');
  const hasher = new Hasher(salt, maxBlocks);
  port.on('message', (task: HashTask | null) => {
    if (task === null) {
      closeSync(fd);
      port.close();
      return;
    }
    try {
      // Its own ArrayBuffer (allocUnsafeSlow never hands out a pool slice), so it can be transferred.
      const out = Buffer.allocUnsafeSlow(task.count * 32);
      const got = hasher.hashRange(fd, task.offset, task.count, out);
      if (got < task.count * BLOCK_SIZE)
        throw new Error(`short read at byte ${task.offset + got}: file ends early`);
      const digests = new Uint8Array(out.buffer, out.byteOffset, out.length);
      port.postMessage({ id: task.id, digests } satisfies HashReply, [out.buffer as ArrayBuffer]);
    } catch (e) {
      port.postMessage({
        id: task.id,
        error: e instanceof Error ? e.message : String(e),
      } satisfies HashReply);
    }
  });
}

/** CommonJS source for `new Worker(…, { eval: true, workerData: HashWorkerData })`. */
export function hashWorkerSource(): string {
  // Every free name of BlockHasher (verity-block-hash.ts's imports and BLOCK_SIZE) and of
  // workerMain (this file's imports).
  return evalWorkerSource({
    requires: {
      'node:crypto': ['hash'],
      'node:fs': ['closeSync', 'openSync', 'readSync', 'readvSync'],
      'node:worker_threads': ['parentPort', 'workerData'],
    },
    constants: { BLOCK_SIZE },
    definitions: [BlockHasher],
    main: workerMain,
    mainArgs: ['BlockHasher'],
  });
}
