// The peer's replay cache: every command id it has accepted, kept until the command expires
// (plus the allowed clock skew), persisted before the action runs so a command executes at
// most once even across agent restarts. The result envelope is kept with the id, so a
// re-delivered command gets its original answer instead of a second execution.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Envelope } from '../keys/index.ts';
import { writeJsonAtomic } from './state-file.ts';

export interface ReplayEntry {
  /** sha256 of the command envelope (a different envelope under the same id is a forgery attempt). */
  digest: string;
  /** When the entry may be dropped: the command's expiry plus the skew. */
  keepUntil: string;
  /** The signed result, once the action finished. */
  result?: Envelope;
}

/** More ids than this means something floods us; refuse instead of growing without bound. */
export const MAX_REPLAY_ENTRIES = 200_000;

export class ReplayCache {
  readonly #file: string;
  #entries = new Map<string, ReplayEntry>();
  #chain: Promise<void> = Promise.resolve();

  constructor(stateDir: string) {
    this.#file = join(stateDir, 'replay-cache.json');
  }

  async load(now = new Date()): Promise<void> {
    try {
      const raw = JSON.parse(await readFile(this.#file, 'utf8')) as Record<string, ReplayEntry>;
      this.#entries = new Map(Object.entries(raw));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      this.#entries = new Map();
    }
    this.prune(now);
  }

  get(id: string): ReplayEntry | undefined {
    return this.#entries.get(id);
  }

  get size(): number {
    return this.#entries.size;
  }

  prune(now = new Date()): void {
    for (const [id, e] of this.#entries)
      if (Date.parse(e.keepUntil) < now.getTime()) this.#entries.delete(id);
  }

  /**
   * Records `id` as seen and persists it; false when it was already there (a replay).
   * Writes are serialized so two concurrent commands cannot lose each other's entry.
   */
  async claim(id: string, entry: ReplayEntry, now = new Date()): Promise<boolean> {
    if (this.#entries.has(id)) return false;
    this.prune(now);
    if (this.#entries.size >= MAX_REPLAY_ENTRIES) return false;
    this.#entries.set(id, entry);
    await this.#persist();
    return true;
  }

  async setResult(id: string, result: Envelope): Promise<void> {
    const e = this.#entries.get(id);
    if (e === undefined) return;
    e.result = result;
    await this.#persist();
  }

  #persist(): Promise<void> {
    const next = this.#chain.then(() => writeJsonAtomic(this.#file, Object.fromEntries(this.#entries)));
    this.#chain = next.catch(() => {});
    return next;
  }
}
