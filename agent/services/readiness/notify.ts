// Readiness `notify`: READY=1 on $NOTIFY_SOCKET (sd_notify), whose directory is bound into
// the sandbox. One listener per run, set up before the run starts.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { listenNotify, type NotifyListener } from '../notify-socket.ts';
import type { Run, RunOptions } from '../runner.ts';
import { type ReadinessCondition, unlessAborted } from './condition.ts';

export class NotifyCondition implements ReadinessCondition {
  readonly what = 'READY=1 on $NOTIFY_SOCKET';
  readonly #dir: string;
  #listener: NotifyListener | undefined;

  /** `runDir`: the agent's directory for notify sockets; `name`: the service's. */
  constructor(runDir: string, name: string) {
    this.#dir = join(runDir, name.replaceAll('/', '_'));
  }

  async prepare(): Promise<RunOptions> {
    this.#listener = await listenNotify(this.#dir);
    return { notifyDir: this.#listener.dir };
  }

  async wait(_run: Run, signal: AbortSignal): Promise<boolean> {
    const l = this.#listener;
    return (
      l !== undefined &&
      (await unlessAborted(
        l.ready.then(() => true),
        signal,
        false,
      ))
    );
  }

  async close(): Promise<void> {
    if (this.#listener === undefined) return;
    this.#listener.close();
    this.#listener = undefined;
    await rm(this.#dir, { recursive: true, force: true });
  }
}
