// Worker thread hashing runs of dm-verity data blocks: sha256(salt ‖ block) for each
// 4096-byte block of a file range it reads itself, so data never crosses threads.
import { closeSync, openSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { BlockHasher } from './verity-block-hash.ts';

export interface HashTask {
  id: number;
  /** Byte offset of the first block in the file. */
  offset: number;
  count: number;
}

export type HashReply = { id: number; digests: Uint8Array } | { id: number; error: string };

const { path, salt, maxBlocks } = workerData as { path: string; salt: Uint8Array; maxBlocks: number };
const port = parentPort;
if (port === null) throw new Error('verity-hash-worker must run as a worker thread');
const fd = openSync(path, 'r');
const hasher = new BlockHasher(salt, maxBlocks);

port.on('message', (task: HashTask | null) => {
  if (task === null) {
    closeSync(fd);
    port.close();
    return;
  }
  try {
    const out = Buffer.allocUnsafe(task.count * 32);
    const got = hasher.hashRange(fd, task.offset, task.count, out);
    if (got < task.count * 4096) throw new Error(`short read at byte ${task.offset + got}: file ends early`);
    const digests = new Uint8Array(out.buffer, out.byteOffset, out.length);
    // Buffer.allocUnsafe may hand out a slice of a shared pool: copy unless we own it all.
    const owned = digests.byteLength === digests.buffer.byteLength ? digests : digests.slice();
    port.postMessage({ id: task.id, digests: owned } satisfies HashReply, [owned.buffer as ArrayBuffer]);
  } catch (e) {
    port.postMessage({ id: task.id, error: e instanceof Error ? e.message : String(e) } satisfies HashReply);
  }
});
