// One read of a payload, two consumers: the main thread reads each chunk into a shared ring
// and computes the dm-verity digests from it, while a worker thread (the second core) feeds
// the same bytes to the whole-payload SHA-256 the manifest binds. No block is read twice.
// Slot hand-over uses Atomics on a shared Int32Array.
import { createHash } from 'node:crypto';
import { parentPort, Worker } from 'node:worker_threads';
import { evalWorkerSource } from '../common/index.ts';
import type { LayerCode } from './layer-codes.ts';
import { LayerError } from './layer-error.ts';

const FREE = 0;
const FULL = 1;
/** Value of the flag word when the main thread gave up / the worker failed. */
const ABORTED = 1;
const FAILED = 2;
/** The main thread stops waiting for a slot after this long (a worker that died silently). */
const STALL_MS = 60_000;
/** Longest wait that blocks the main thread; longer ones let the event loop run. */
const BLOCKING_WAIT_MS = 10;

export interface RingLayout {
  /** Blocks per chunk (one slot) and the data block size. */
  chunkBlocks: number;
  blockSize: number;
  /** Each block sits after a copy of the salt, so its verity digest is one one-shot hash. */
  saltLength: number;
  slots: number;
}

/** Bytes the ring of `l` needs. */
export function ringBytes(l: RingLayout): number {
  return l.slots * l.chunkBlocks * (l.saltLength + l.blockSize);
}

/** Views of slot `k`: salt-prefixed blocks (for verity) and the bare blocks (data). */
export function slotViews(arena: ArrayBufferLike, l: RingLayout, k: number) {
  const stride = l.saltLength + l.blockSize;
  const base = k * l.chunkBlocks * stride;
  const salted: Buffer[] = [];
  const blocks: Buffer[] = [];
  for (let i = 0; i < l.chunkBlocks; i++) {
    const at = base + i * stride;
    salted.push(Buffer.from(arena, at, stride));
    blocks.push(Buffer.from(arena, at + l.saltLength, l.blockSize));
  }
  return { salted, blocks };
}

export interface RingJob {
  layout: RingLayout;
  arena: SharedArrayBuffer;
  /** Int32 words: one state per slot, then the flag word. */
  state: SharedArrayBuffer;
  dataBlocks: number;
  /** For messages. */
  path: string;
}

/** Marks the ring of `state` failed and wakes every waiter (either side). */
function failRing(state: Int32Array, slots: number): void {
  Atomics.store(state, slots, FAILED);
  for (let k = 0; k < slots; k++) Atomics.notify(state, k);
}

/** The worker's side: consume every chunk in order; returns the SHA-256 (hex). */
export function consumeRing(job: RingJob): string {
  const { layout: l, dataBlocks } = job;
  const state = new Int32Array(job.state);
  const flag = l.slots;
  const views = Array.from({ length: l.slots }, (_, k) => slotViews(job.arena, l, k).blocks);
  const h = createHash('sha256');
  try {
    for (let c = 0, first = 0; first < dataBlocks; c++, first += l.chunkBlocks) {
      const k = c % l.slots;
      while (Atomics.load(state, k) !== FULL) {
        if (Atomics.load(state, flag) !== 0) throw new Error('the main thread stopped reading');
        Atomics.wait(state, k, FREE, 1000);
      }
      const n = Math.min(l.chunkBlocks, dataBlocks - first);
      const blocks = (views[k] as Buffer[]).slice(0, n);
      for (const b of blocks) h.update(b);
      Atomics.store(state, k, FREE);
      Atomics.notify(state, k);
    }
  } catch (e) {
    failRing(state, flag);
    throw e;
  }
  return h.digest('hex');
}

/** The worker's body: one job, answered with the digest or a coded error. */
function workerMain(): void {
  const port = parentPort;
  if (port === null) throw new Error('the payload digest worker must run as a worker thread');
  port.once('message', (job: RingJob) => {
    try {
      port.postMessage({ sha256: consumeRing(job) });
    } catch (e) {
      port.postMessage({ error: e instanceof Error ? e.message : String(e), code: 'E_LAYER_READ' });
    }
  });
}

let source: string | undefined;

/**
 * CommonJS source of the worker, assembled from the functions above (common/eval-worker.ts
 * says why); every free name is bound here, which the 20 MiB layer test exercises.
 */
function workerSource(): string {
  source ??= evalWorkerSource({
    requires: { 'node:crypto': ['createHash'], 'node:worker_threads': ['parentPort'] },
    constants: { FREE, FULL, FAILED },
    definitions: [slotViews, failRing, consumeRing],
    main: workerMain,
  });
  return source;
}

/** The main thread's side of the ring. */
export class RingWriter {
  readonly layout: RingLayout;
  readonly arena: SharedArrayBuffer;
  readonly stateBuffer: SharedArrayBuffer;
  private readonly state: Int32Array;

  constructor(layout: RingLayout) {
    this.layout = layout;
    this.arena = new SharedArrayBuffer(ringBytes(layout));
    this.stateBuffer = new SharedArrayBuffer(4 * (layout.slots + 1));
    this.state = new Int32Array(this.stateBuffer);
  }

  /**
   * Resolves once the worker is done with slot `k`; false when the worker failed. A short
   * wait blocks (the worker is mid-chunk; a futex wake-up measured 5–12 % faster than an
   * event-loop task under load); a longer one goes through Atomics.waitAsync, so the event loop
   * runs meanwhile (the agent verifies layers as PID 1) and a dead worker's 'exit' is seen.
   */
  async acquire(k: number, path: string): Promise<boolean> {
    const deadline = performance.now() + STALL_MS;
    while (Atomics.load(this.state, k) !== FREE) {
      if (Atomics.load(this.state, this.layout.slots) === FAILED) return false;
      if (Atomics.wait(this.state, k, FULL, BLOCKING_WAIT_MS) !== 'timed-out') continue;
      const left = deadline - performance.now();
      if (left <= 0)
        throw new LayerError('E_LAYER_READ', `${path}: the payload digest thread stalled`, { path });
      const w = Atomics.waitAsync(this.state, k, FULL, left);
      if (w.async) await w.value;
    }
    return true;
  }

  /** Hands slot `k` (filled) to the worker. */
  publish(k: number): void {
    Atomics.store(this.state, k, FULL);
    Atomics.notify(this.state, k);
  }

  /** Tells the worker to stop (the main thread failed). */
  abort(): void {
    Atomics.store(this.state, this.layout.slots, ABORTED);
    for (let k = 0; k < this.layout.slots; k++) Atomics.notify(this.state, k);
  }
}

export interface DigestWorker {
  /** Starts consuming `job`'s ring; resolves to the SHA-256 (hex). A worker runs one job. */
  run(job: RingJob): Promise<string>;
  /** Ends the thread (idempotent; also after run). */
  stop(): void;
}

/**
 * Starts the thread now, so its start-up (tens of ms) overlaps whatever the caller does
 * before it has a job (pack: mkfs.erofs).
 */
export function startDigestWorker(): DigestWorker {
  const w = new Worker(workerSource(), { eval: true });
  let stopped = false;
  const stop = () => {
    if (!stopped) {
      stopped = true;
      void w.terminate();
    }
  };
  // An error before run() is reported by run(); never an unhandled 'error' event.
  let early: unknown;
  w.on('error', (e) => {
    early = e;
  });
  return {
    stop,
    run(job) {
      // A worker that dies without answering still releases the main thread's wait.
      const fail = () => failRing(new Int32Array(job.state), job.layout.slots);
      const p = new Promise<string>((resolve, reject) => {
        if (early !== undefined) {
          fail();
          reject(early);
        }
        w.once('message', (m: { sha256?: string; code?: LayerCode; error?: string }) => {
          if (m.sha256 !== undefined) resolve(m.sha256);
          else
            reject(
              new LayerError(m.code ?? 'E_LAYER_READ', m.error ?? 'payload digest failed', {
                path: job.path,
              }),
            );
        });
        w.once('error', (e) => {
          fail();
          reject(e);
        });
        w.once('exit', (code) => {
          if (stopped) return;
          fail();
          reject(
            new LayerError('E_LAYER_READ', `payload digest worker exited with ${code}`, { path: job.path }),
          );
        });
        w.postMessage(job);
      });
      const done = p.finally(stop);
      // Observed later; never an unhandled rejection if the caller throws first.
      done.catch(() => undefined);
      return done;
    },
  };
}
