// The peer's replay cache: every command id it has accepted, kept until the command expires
// (plus the allowed clock skew), persisted before the action runs so a command executes at
// most once even across agent restarts. The result envelope is kept with the id, so a
// re-delivered command gets its original answer instead of a second execution.
//
// On disk: `<stateDir>/replay-cache.log`, one JSON object per line, appended and fsynced per
// change (`{"c":id,"d":digest,"k":keepUntil}` claims, `{"r":id,"e":result}` results), so a
// claim costs one small write however many ids are held. Loading replays the lines (a torn
// last line from a crash is ignored: its command never ran, because the claim is awaited
// before the action) and rewrites the live entries atomically when the log has grown.
import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Envelope } from '../keys/index.ts';
import { writeFileAtomic } from './state-file.ts';

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

type Line = { c: string; d: string; k: string } | { r: string; e: Envelope };

export class ReplayCache {
  readonly #file: string;
  readonly #legacy: string;
  #entries = new Map<string, ReplayEntry>();
  #lines = 0;
  #chain: Promise<void> = Promise.resolve();

  constructor(stateDir: string) {
    this.#file = join(stateDir, 'replay-cache.log');
    this.#legacy = join(stateDir, 'replay-cache.json');
  }

  async load(now = new Date()): Promise<void> {
    this.#entries = new Map();
    // The first format (one JSON object rewritten per change) is read once and folded in.
    try {
      const old = JSON.parse(await readFile(this.#legacy, 'utf8')) as Record<string, ReplayEntry>;
      for (const [id, e] of Object.entries(old)) this.#entries.set(id, e);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    let text = '';
    try {
      text = await readFile(this.#file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const lines = text.split('\n');
    for (const [i, raw] of lines.entries()) {
      if (raw === '') continue;
      let l: Line;
      try {
        l = JSON.parse(raw) as Line;
      } catch (e) {
        if (i === lines.length - 1) break; // torn by a crash mid-append
        throw new Error(`Replay cache ${this.#file} line ${i + 1} is corrupt: ${(e as Error).message}`);
      }
      if ('c' in l) this.#entries.set(l.c, { digest: l.d, keepUntil: l.k });
      else {
        const e = this.#entries.get(l.r);
        if (e !== undefined) e.result = l.e;
      }
    }
    this.prune(now);
    await this.#compact();
    await rm(this.#legacy, { force: true });
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
   * The in-memory claim happens synchronously, so two concurrent deliveries cannot both win.
   */
  async claim(id: string, entry: ReplayEntry, now = new Date()): Promise<boolean> {
    if (this.#entries.has(id)) return false;
    this.prune(now);
    if (this.#entries.size >= MAX_REPLAY_ENTRIES) return false;
    this.#entries.set(id, entry);
    await this.#append({ c: id, d: entry.digest, k: entry.keepUntil });
    return true;
  }

  async setResult(id: string, result: Envelope): Promise<void> {
    const e = this.#entries.get(id);
    if (e === undefined) return;
    e.result = result;
    await this.#append({ r: id, e: result });
  }

  #serial(f: () => Promise<void>): Promise<void> {
    const next = this.#chain.then(f);
    this.#chain = next.catch(() => {});
    return next;
  }

  #append(line: Line): Promise<void> {
    return this.#serial(async () => {
      const fh = await open(this.#file, 'a', 0o600);
      try {
        await fh.write(`${JSON.stringify(line)}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      this.#lines++;
      // Expired ids and superseded lines pile up; rewrite once they outnumber the live ones.
      if (this.#lines > 2 * this.#entries.size + 1000) await this.#rewrite();
    });
  }

  #compact(): Promise<void> {
    return this.#serial(() => this.#rewrite());
  }

  async #rewrite(): Promise<void> {
    const out: string[] = [];
    for (const [id, e] of this.#entries) {
      out.push(JSON.stringify({ c: id, d: e.digest, k: e.keepUntil }));
      if (e.result !== undefined) out.push(JSON.stringify({ r: id, e: e.result }));
    }
    await writeFileAtomic(this.#file, out.length === 0 ? '' : `${out.join('\n')}\n`);
    this.#lines = out.length;
  }
}
