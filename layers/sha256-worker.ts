// Worker thread: SHA-256 of `length` bytes at `offset` of `path`, so the whole-payload digest
// runs on the second core while the main thread computes the dm-verity digests.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const { path, offset, length } = workerData as { path: string; offset: number; length: number };
const h = createHash('sha256');
const fd = openSync(path, 'r');
try {
  const buf = Buffer.allocUnsafe(4 << 20);
  for (let done = 0; done < length; ) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, length - done), offset + done);
    if (n === 0) throw new Error(`${path} ends at byte ${offset + done}`);
    h.update(buf.subarray(0, n));
    done += n;
  }
  parentPort?.postMessage({ sha256: h.digest('hex') });
} catch (e) {
  parentPort?.postMessage({ error: (e as Error).message });
} finally {
  closeSync(fd);
}
