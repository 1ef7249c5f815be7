// The broker database's WAL checkpoints, on a worker thread with its own SQLite connection.
// Checkpointing copies committed pages from the WAL into the database file and fsyncs both;
// done by the committing connection (SQLite's default, every 1000 pages) it stalled the broker's
// event loop for tens of milliseconds several times per thousand results, each stall delaying
// every peer and operator. A PASSIVE checkpoint from another connection takes no lock a writer
// waits for, and changes nothing about durability (synchronous=NORMAL already leaves the last
// commits to the next checkpoint's fsync).
import { Worker } from 'node:worker_threads';
import { evalWorkerSource } from '../../common/index.ts';

/** How often the worker checkpoints (ms). */
export const CHECKPOINT_EVERY_MS = 250;

export interface WalCheckpointer {
  /** Asks the worker to close its connection and end; does not wait. */
  stop(): void;
}

interface CheckpointWorkerData {
  path: string;
  everyMs: number;
}

/** The worker's body (runs as CommonJS source: see common/eval-worker.ts). */
function checkpointMain(): void {
  const { path, everyMs } = workerData as CheckpointWorkerData;
  const db = new DatabaseSync(path);
  db.exec('PRAGMA busy_timeout = 1000');
  const timer = setInterval(() => {
    try {
      db.exec('PRAGMA wal_checkpoint(PASSIVE)');
    } catch (e) {
      parentPort?.postMessage(e instanceof Error ? e.message : String(e));
    }
  }, everyMs);
  parentPort?.on('message', () => {
    clearInterval(timer);
    db.close();
    parentPort?.close();
  });
}

// The names checkpointMain reads at run time, bound by the worker source's requires.
declare const DatabaseSync: typeof import('node:sqlite').DatabaseSync;
declare const workerData: unknown;
declare const parentPort: import('node:worker_threads').MessagePort | null;

/** Starts checkpointing the WAL of the database at `path`; `onError` hears each failed checkpoint. */
export function startWalCheckpointer(path: string, onError: (message: string) => void): WalCheckpointer {
  const source = evalWorkerSource({
    requires: {
      'node:sqlite': ['DatabaseSync'],
      'node:worker_threads': ['parentPort', 'workerData'],
    },
    definitions: [],
    main: checkpointMain,
  });
  const data: CheckpointWorkerData = { path, everyMs: CHECKPOINT_EVERY_MS };
  const w = new Worker(source, { eval: true, workerData: data });
  // It never keeps the broker's process alive; the broker's own connection checkpoints at close.
  w.unref();
  w.on('message', (m: unknown) => onError(String(m)));
  w.on('error', (e) => onError(e.message));
  return {
    stop: () => {
      w.postMessage('stop');
    },
  };
}
