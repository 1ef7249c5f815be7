// The peer's replay cache: every command id it has accepted, kept until the command expires
// (plus the allowed clock skew), persisted before the action runs so a command executes at
// most once even across agent restarts. The result envelope is kept with the id, so a
// re-delivered command gets its original answer instead of a second execution.
//
// It also holds each operator's sequence window (doc/commands.md, "Sequence numbers"): the
// highest `seq` admitted from an operator certificate fingerprint and which numbers within
// SEQ_WINDOW below it were used, so a number is used at most once and one far behind is
// stale. Unlike the ids, this state never expires: it is what still refuses a command after
// its id has left the cache.
//
// On disk: `<stateDir>/replay-cache.log`, one JSON object per line, appended and fsynced per
// change (`{"c":id,"d":digest,"k":keepUntil,"o":operator,"s":seq}` claims, `{"r":id,"e":result}`
// results, `{"o":operator,"h":highest,"u":[used…]}` windows written by a rewrite), so a
// claim costs one small write however many ids are held. Loading replays the lines (a torn
// last line from a crash is ignored: its command never ran, because the claim is awaited
// before the action) and rewrites the live entries atomically when the log has grown.
//
// The log's first line is `{"version":1}`. Version 0 — the log without that line, and before
// it `replay-cache.json` — is read and rewritten as version 1 at load. A newer version is
// refused (E_STATE_VERSION) before anything is touched, and a damaged line other than a torn
// last one is E_STATE_CORRUPT: an agent that forgot its replay cache could run a command twice.
import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Envelope } from '../../keys/index.ts';
import { stateVersionOf, writeFileAtomic } from '../../common/index.ts';
import { AgentError } from '../core/agent-error.ts';

export interface ReplayEntry {
  /** sha256 of the command envelope (a different envelope under the same id is a forgery attempt). */
  digest: string;
  /** When the entry may be dropped: the command's expiry plus the skew. */
  keepUntil: string;
  /** The signed result, once the action finished. */
  result?: Envelope;
}

/** The version of replay-cache.log this agent writes (its first line). */
export const REPLAY_CACHE_VERSION = 1;

/** More ids than this means something floods us; refuse instead of growing without bound. */
export const MAX_REPLAY_ENTRIES = 200_000;
/**
 * How far below an operator's highest sequence number a command may still arrive (batches,
 * pending commands delivered when an offline peer reconnects). `mway` adds 1 per command, so
 * this is 4096 commands from one operator.
 */
export const SEQ_WINDOW = 4096;
/** Operators whose windows are kept; beyond this the least recently advanced is dropped. */
export const MAX_SEQ_OPERATORS = 10_000;

/** The operator (certificate fingerprint) and sequence number a command claims. */
export interface SeqClaim {
  operator: string;
  seq: number;
}

export type SeqVerdict = 'ok' | 'reused' | 'stale';
export type ClaimVerdict = 'ok' | 'replayed' | 'full' | 'seq-reused' | 'seq-stale';

interface SeqWindow {
  high: number;
  used: Set<number>;
}

type Line =
  | { version: number }
  | { c: string; d: string; k: string; o?: string; s?: number }
  | { r: string; e: Envelope }
  | { o: string; h: number; u: number[] };

export class ReplayCache {
  readonly #file: string;
  readonly #legacy: string;
  #entries = new Map<string, ReplayEntry>();
  #seqs = new Map<string, SeqWindow>();
  #lines = 0;
  #chain: Promise<void> = Promise.resolve();

  constructor(stateDir: string) {
    this.#file = join(stateDir, 'replay-cache.log');
    this.#legacy = join(stateDir, 'replay-cache.json');
  }

  async load(now = new Date()): Promise<void> {
    this.#entries = new Map();
    this.#seqs = new Map();
    let text = '';
    try {
      text = await readFile(this.#file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const lines = text.split('\n');
    const corrupt = (i: number, why: string): AgentError =>
      new AgentError('E_STATE_CORRUPT', `Replay cache ${this.#file} line ${i + 1} is corrupt: ${why}`, {
        path: this.#file,
      });
    const parsed: [number, Line][] = [];
    for (const [i, raw] of lines.entries()) {
      if (raw === '') continue;
      try {
        parsed.push([i, JSON.parse(raw) as Line]);
      } catch (e) {
        if (i === lines.length - 1) break; // torn by a crash mid-append
        throw corrupt(i, (e as Error).message);
      }
    }
    // The version line comes first; without it the log is version 0. Checked before the
    // legacy file is read or anything is rewritten.
    stateVersionOf(parsed[0]?.[1] ?? {}, {
      what: 'replay cache',
      path: this.#file,
      current: REPLAY_CACHE_VERSION,
      isLegacy: (r) => !(typeof r === 'object' && r !== null && 'version' in r),
      error: (code, message, options) => new AgentError(code, message, options),
    });
    // The first format (one JSON object rewritten per change) is read once and folded in.
    try {
      const old = JSON.parse(await readFile(this.#legacy, 'utf8')) as Record<string, ReplayEntry>;
      for (const [id, e] of Object.entries(old)) this.#entries.set(id, e);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    for (const [n, [i, l]] of parsed.entries()) {
      if (typeof l !== 'object' || l === null) throw corrupt(i, 'not a JSON object');
      if ('version' in l) {
        if (n !== 0) throw corrupt(i, 'a version line after the first');
      } else if ('c' in l) {
        this.#entries.set(l.c, { digest: l.d, keepUntil: l.k });
        if (typeof l.o === 'string' && typeof l.s === 'number') this.#record({ operator: l.o, seq: l.s });
      } else if ('h' in l) {
        for (const u of l.u) this.#record({ operator: l.o, seq: u });
        this.#record({ operator: l.o, seq: l.h });
      } else if ('r' in l) {
        const e = this.#entries.get(l.r);
        if (e !== undefined) e.result = l.e;
      } else {
        throw corrupt(i, 'not a claim, result or sequence window');
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

  /** Whether `seq` may still be used by `operator`: unused and within SEQ_WINDOW of the highest. */
  checkSeq(s: SeqClaim): SeqVerdict {
    const w = this.#seqs.get(s.operator);
    if (w === undefined || s.seq > w.high) return 'ok';
    if (w.high - s.seq > SEQ_WINDOW) return 'stale';
    return w.used.has(s.seq) ? 'reused' : 'ok';
  }

  /** The highest sequence number admitted from `operator`, if any. */
  highestSeq(operator: string): number | undefined {
    return this.#seqs.get(operator)?.high;
  }

  #record(s: SeqClaim): void {
    let w = this.#seqs.get(s.operator);
    if (w === undefined) {
      if (this.#seqs.size >= MAX_SEQ_OPERATORS) {
        // Map order is insertion order and advancing re-inserts: the first is the stalest.
        const first = this.#seqs.keys().next().value;
        if (first !== undefined) this.#seqs.delete(first);
      }
      w = { high: s.seq, used: new Set() };
      this.#seqs.set(s.operator, w);
    }
    if (s.seq > w.high) {
      w.high = s.seq;
      for (const u of w.used) if (w.high - u > SEQ_WINDOW) w.used.delete(u);
      this.#seqs.delete(s.operator);
      this.#seqs.set(s.operator, w);
    }
    if (w.high - s.seq <= SEQ_WINDOW) w.used.add(s.seq);
  }

  /**
   * Records `id` as seen and persists it; false when it was already there (a replay).
   * The in-memory claim happens synchronously, so two concurrent deliveries cannot both win.
   */
  async claim(id: string, entry: ReplayEntry, now = new Date()): Promise<boolean> {
    return (await this.claimCommand(id, entry, undefined, now)) === 'ok';
  }

  /**
   * Claims `id` and, when given, the operator's sequence number, together: both are checked
   * and recorded synchronously before the one append that persists them, so two deliveries
   * racing cannot both win and a crash cannot keep one without the other.
   */
  async claimCommand(
    id: string,
    entry: ReplayEntry,
    seq: SeqClaim | undefined,
    now = new Date(),
  ): Promise<ClaimVerdict> {
    if (this.#entries.has(id)) return 'replayed';
    if (seq !== undefined) {
      const v = this.checkSeq(seq);
      if (v !== 'ok') return v === 'reused' ? 'seq-reused' : 'seq-stale';
    }
    this.prune(now);
    if (this.#entries.size >= MAX_REPLAY_ENTRIES) return 'full';
    this.#entries.set(id, entry);
    if (seq !== undefined) this.#record(seq);
    await this.#append({
      c: id,
      d: entry.digest,
      k: entry.keepUntil,
      ...(seq === undefined ? {} : { o: seq.operator, s: seq.seq }),
    });
    return 'ok';
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
      if (this.#lines > 2 * this.#entries.size + this.#seqs.size + 1000) await this.#rewrite();
    });
  }

  #compact(): Promise<void> {
    return this.#serial(() => this.#rewrite());
  }

  async #rewrite(): Promise<void> {
    const out: string[] = [JSON.stringify({ version: REPLAY_CACHE_VERSION })];
    for (const [id, e] of this.#entries) {
      out.push(JSON.stringify({ c: id, d: e.digest, k: e.keepUntil }));
      if (e.result !== undefined) out.push(JSON.stringify({ r: id, e: e.result }));
    }
    for (const [o, w] of this.#seqs) out.push(JSON.stringify({ o, h: w.high, u: [...w.used] }));
    await writeFileAtomic(this.#file, `${out.join('\n')}\n`);
    this.#lines = out.length;
  }
}
