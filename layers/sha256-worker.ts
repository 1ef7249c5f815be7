// Worker thread: consumes one payload-digest.ts ring (SHA-256 of the payload, optionally
// written into the .mwl) on the second core, while the main thread computes the verity digests.
import { parentPort } from 'node:worker_threads';
import { consumeRing, type RingJob } from './payload-digest.ts';

parentPort?.once('message', (job: RingJob) => {
  try {
    parentPort?.postMessage({ sha256: consumeRing(job) });
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    parentPort?.postMessage({
      error: (e as Error).message,
      code: typeof code === 'string' && code.startsWith('E_') ? code : 'E_LAYER_READ',
    });
  }
});
