// Which uid/gid and which MCS category pair each layer runs with, allocated once and kept on
// the data partition so a layer's `secure/<layer>` directory keeps its owner and its label
// across boots and upgrades. The uid range is the one systemd uses for dynamic users
// (61184–65519); the pair is two of the policy's 1,024 categories (doc/selinux.md, "MCS"): no
// two layers share one, so no layer's level dominates another's.
//
// On disk (`data/uids.json`): `{"version": 2, "layers": {"<layer>": {"uid": N, "categories":
// [a, b]}, …}}`. Version 1 (`{"version": 1, "uids": {"<layer>": N}}`) and version 0 (the bare
// `{"<layer>": N}`) are read and rewritten as version 2 at open, each layer getting a pair in
// uid order; a newer version is refused (E_STATE_VERSION), a damaged file too (E_UID_TABLE):
// losing a layer's uid or pair would hand its secure data to the next layer allocated.
import { readFile } from 'node:fs/promises';
import { stateVersionOf, writeFileAtomic } from '../../common/index.ts';
import { AgentError } from '../core/agent-error.ts';

/** The version of uids.json this agent writes. */
export const UID_TABLE_VERSION = 2;

const FIRST = 61184;
const LAST = 65519;
/** The policy's categories (layers/selinux/base.cil): c0 … c1023. */
const CATEGORIES = 1024;

export type CategoryPair = readonly [number, number];

export interface LayerIds {
  uid: number;
  gid: number;
  categories: CategoryPair;
}

interface Entry {
  uid: number;
  categories: CategoryPair;
}

function pairKey(p: CategoryPair): string {
  return `${p[0]},${p[1]}`;
}

/** The first pair (a < b, in order) not in `used`. */
function freePair(used: ReadonlySet<string>): CategoryPair | undefined {
  for (let a = 0; a < CATEGORIES - 1; a++) {
    for (let b = a + 1; b < CATEGORIES; b++) if (!used.has(`${a},${b}`)) return [a, b];
  }
  return undefined;
}

export class UidTable {
  readonly path: string;
  /** layer → uid (gid = uid). */
  readonly map: Record<string, number>;
  readonly #entries: Record<string, Entry>;

  private constructor(path: string, entries: Record<string, Entry>) {
    this.path = path;
    this.#entries = entries;
    this.map = Object.fromEntries(Object.entries(entries).map(([k, e]) => [k, e.uid]));
  }

  static async open(path: string): Promise<UidTable> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new UidTable(path, {});
      throw new AgentError('E_UID_TABLE', `Cannot read ${path}: ${(e as Error).message}`, { path, cause: e });
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new AgentError('E_UID_TABLE', `Cannot read ${path}: not JSON: ${(e as Error).message}`, {
        path,
        cause: e,
      });
    }
    const version = stateVersionOf(raw, {
      what: 'uid table',
      path,
      current: UID_TABLE_VERSION,
      isLegacy: (r) => isObject(r) && Object.values(r).every((v) => typeof v === 'number'),
      error: (code, message, options) => new AgentError(code, message, options),
    });
    const bad = (why: string): never => {
      throw new AgentError('E_UID_TABLE', `Cannot read ${path}: ${why}`, { path });
    };
    const checkUid = (k: string, v: unknown): number => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < FIRST || v > LAST)
        bad(`${k} has uid ${JSON.stringify(v)}, not ${FIRST}…${LAST}`);
      return v as number;
    };
    const entries: Record<string, Entry> = {};
    if (version < 2) {
      const uids = version === 0 ? raw : (raw as { uids?: unknown }).uids;
      if (!isObject(uids)) bad('uids is not an object');
      const byUid = Object.entries(uids as Record<string, unknown>)
        .map(([k, v]) => [k, checkUid(k, v)] as const)
        .sort((a, b) => a[1] - b[1]);
      const used = new Set<string>();
      for (const [k, uid] of byUid) {
        const categories = freePair(used) ?? bad('no free category pair');
        used.add(pairKey(categories));
        entries[k] = { uid, categories };
      }
    } else {
      const layers = (raw as { layers?: unknown }).layers;
      if (!isObject(layers)) bad('layers is not an object');
      const seenUid = new Set<number>();
      const seenPair = new Set<string>();
      for (const [k, v] of Object.entries(layers as Record<string, unknown>)) {
        if (!isObject(v)) bad(`${k} is not an object`);
        const e = v as { uid?: unknown; categories?: unknown };
        const uid = checkUid(k, e.uid);
        const c = Array.isArray(e.categories) ? (e.categories as unknown[]) : [];
        const [a, b] = c;
        if (
          c.length !== 2 ||
          typeof a !== 'number' ||
          typeof b !== 'number' ||
          !Number.isInteger(a) ||
          !Number.isInteger(b) ||
          a < 0 ||
          a >= b ||
          b >= CATEGORIES
        )
          bad(
            `${k} has categories ${JSON.stringify(e.categories)}, not [a, b] with 0 ≤ a < b < ${CATEGORIES}`,
          );
        const categories: CategoryPair = [a as number, b as number];
        if (seenUid.has(uid)) bad(`uid ${uid} is given to two layers`);
        if (seenPair.has(pairKey(categories)))
          bad(`categories ${pairKey(categories)} are given to two layers`);
        seenUid.add(uid);
        seenPair.add(pairKey(categories));
        entries[k] = { uid, categories };
      }
    }
    const table = new UidTable(path, entries);
    if (version < UID_TABLE_VERSION) await table.#write(entries);
    return table;
  }

  async #write(entries: Record<string, Entry>): Promise<void> {
    const layers = Object.fromEntries(
      Object.entries(entries).map(([k, e]) => [k, { uid: e.uid, categories: [...e.categories] }]),
    );
    await writeFileAtomic(
      this.path,
      `${JSON.stringify({ version: UID_TABLE_VERSION, layers }, null, 2)}\n`,
      0o644,
    );
  }

  /** The layer's ids, or undefined when it has none yet. */
  get(layer: string): LayerIds | undefined {
    const e = this.#entries[layer];
    return e === undefined ? undefined : { uid: e.uid, gid: e.uid, categories: e.categories };
  }

  async allocate(layer: string): Promise<LayerIds> {
    const known = this.get(layer);
    if (known !== undefined) return known;
    const entries = Object.values(this.#entries);
    const used = new Set(entries.map((e) => e.uid));
    let uid = FIRST;
    while (used.has(uid) && uid <= LAST) uid++;
    if (uid > LAST) throw new AgentError('E_UID_TABLE', 'No free uid for a new layer');
    const categories = freePair(new Set(entries.map((e) => pairKey(e.categories))));
    if (categories === undefined)
      throw new AgentError('E_UID_TABLE', 'No free category pair for a new layer');
    // Written before it is used: a failed write leaves the table as it was on disk and here.
    const next = { ...this.#entries, [layer]: { uid, categories } };
    await this.#write(next);
    this.#entries[layer] = { uid, categories };
    this.map[layer] = uid;
    return { uid, gid: uid, categories };
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function ownerOf(table: UidTable, layer: string): { uid: number; gid: number } | undefined {
  const ids = table.get(layer);
  return ids === undefined ? undefined : { uid: ids.uid, gid: ids.gid };
}
