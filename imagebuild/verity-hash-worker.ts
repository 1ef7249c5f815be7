// Worker thread hashing runs of dm-verity data blocks: sha256(salt ‖ block) for each
// 4096-byte block of a file range it reads itself, so data never crosses threads.
//
// The worker runs from a source string (`new Worker(src, { eval: true })`) assembled from
// the stripped source of `BlockHasher` and `workerMain` below, not from this .ts file:
// each worker isolate that loads a .ts file starts the type stripper again, which made a
// worker take 50–80 ms to answer its first message instead of 25–30 ms (measured on 2 cores).
import { closeSync, openSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { BLOCK, BlockHasher } from './verity-block-hash.ts';

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
      if (got < task.count * 4096)
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
  // Binds every free name of BlockHasher (verity-block-hash.ts's imports and BLOCK) and of
  // workerMain (this file's imports); a missing one fails the worker with a ReferenceError,
  // which the verity tests' worker path would catch.
  return [
    "'use strict';",
    "const { hash } = require('node:crypto');",
    "const { closeSync, openSync, readSync, readvSync } = require('node:fs');",
    "const { parentPort, workerData } = require('node:worker_threads');",
    `const BLOCK = ${BLOCK};`,
    BlockHasher.toString(),
    `(${workerMain.toString()})(BlockHasher);`,
  ].join('\n');
}
