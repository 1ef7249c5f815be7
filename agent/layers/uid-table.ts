// Which uid/gid each layer runs as, allocated once and kept on the data partition so a
// layer's `secure/<layer>` directory keeps its owner across boots and upgrades. The range
// is the one systemd uses for dynamic users (61184–65519).
//
// On disk (`data/uids.json`): `{"version": 1, "uids": {"<layer>": <uid>, …}}`. Version 0, the
// bare `{"<layer>": <uid>}` object written before versions, is read and rewritten as version 1
// at open; a newer version is refused (E_STATE_VERSION), a damaged file too (E_UID_TABLE):
// losing a layer's uid would hand its secure data to the next layer allocated.
import { readFile } from 'node:fs/promises';
import { stateVersionOf, writeFileAtomic } from '../../common/index.ts';
import { AgentError } from '../core/agent-error.ts';

/** The version of uids.json this agent writes. */
export const UID_TABLE_VERSION = 1;

const FIRST = 61184;
const LAST = 65519;

export class UidTable {
  readonly path: string;
  readonly map: Record<string, number>;

  private constructor(path: string, map: Record<string, number>) {
    this.path = path;
    this.map = map;
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
    const entries = version === 0 ? raw : (raw as { uids?: unknown }).uids;
    if (!isObject(entries))
      throw new AgentError('E_UID_TABLE', `Cannot read ${path}: uids is not an object`, { path });
    const map: Record<string, number> = {};
    for (const [k, v] of Object.entries(entries)) {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < FIRST || v > LAST) {
        throw new AgentError(
          'E_UID_TABLE',
          `Cannot read ${path}: ${k} has uid ${JSON.stringify(v)}, not ${FIRST}…${LAST}`,
          {
            path,
          },
        );
      }
      map[k] = v;
    }
    const table = new UidTable(path, map);
    if (version < UID_TABLE_VERSION) await table.#write(map);
    return table;
  }

  async #write(map: Record<string, number>): Promise<void> {
    await writeFileAtomic(
      this.path,
      `${JSON.stringify({ version: UID_TABLE_VERSION, uids: map }, null, 2)}\n`,
      0o644,
    );
  }

  async allocate(layer: string): Promise<{ uid: number; gid: number }> {
    const known = this.map[layer];
    if (known !== undefined) return { uid: known, gid: known };
    const used = new Set(Object.values(this.map));
    let uid = FIRST;
    while (used.has(uid) && uid <= LAST) uid++;
    if (uid > LAST) throw new AgentError('E_UID_TABLE', 'No free uid for a new layer');
    // Written before it is used: a failed write leaves the table as it was on disk and here.
    const next = { ...this.map, [layer]: uid };
    await this.#write(next);
    this.map[layer] = uid;
    return { uid, gid: uid };
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function ownerOf(table: UidTable, layer: string): { uid: number; gid: number } | undefined {
  const uid = table.map[layer];
  return uid === undefined ? undefined : { uid, gid: uid };
}
