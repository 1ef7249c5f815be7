// Which uid/gid each layer runs as, allocated once and kept on the data partition so a
// layer's `secure/<layer>` directory keeps its owner across boots and upgrades. The range
// is the one systemd uses for dynamic users (61184–65519).
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../../common/index.ts';
import { AgentError } from '../core/agent-error.ts';

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
    let map: Record<string, number> = {};
    try {
      const raw = JSON.parse(await readFile(path, 'utf8')) as unknown;
      if (typeof raw === 'object' && raw !== null) {
        for (const [k, v] of Object.entries(raw))
          if (typeof v === 'number' && v >= FIRST && v <= LAST) map[k] = v;
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new AgentError('E_UID_TABLE', `Cannot read ${path}: ${(e as Error).message}`, {
          path,
          cause: e,
        });
      }
      map = {};
    }
    return new UidTable(path, map);
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
    await writeFileAtomic(this.path, `${JSON.stringify(next, null, 2)}\n`, 0o644);
    this.map[layer] = uid;
    return { uid, gid: uid };
  }
}

export function ownerOf(table: UidTable, layer: string): { uid: number; gid: number } | undefined {
  const uid = table.map[layer];
  return uid === undefined ? undefined : { uid, gid: uid };
}
