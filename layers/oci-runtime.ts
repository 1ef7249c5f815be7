// What `podman run IMAGE` gives an image that a layer must give it too (OCI image spec,
// config.md: User; containers.conf(5): default_capabilities): names in `User` resolved
// through the image's own /etc/passwd and /etc/group, and the capabilities a container's
// root keeps by default.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Podman's default capability set for a container's root (containers.conf
 * `default_capabilities`, Podman 4 and 5): what an imported image running as root keeps.
 */
export const PODMAN_DEFAULT_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_NET_BIND_SERVICE',
  'CAP_SETFCAP',
  'CAP_SETGID',
  'CAP_SETPCAP',
  'CAP_SETUID',
  'CAP_SYS_CHROOT',
] as const;

/** An account database (passwd or group): name → id and id → name. */
export interface Accounts {
  byName: Map<string, number>;
  byId: Map<number, string>;
}

const MAX_ACCOUNTS_BYTES = 1 << 20;

/** Parses passwd(5) or group(5) lines (`name:x:id:…`); malformed lines are skipped, as libc does. */
export function parseAccounts(text: string): Accounts {
  const byName = new Map<string, number>();
  const byId = new Map<number, string>();
  for (const line of text.split('\n')) {
    const [name, , id] = line.split(':');
    if (name === undefined || name === '' || id === undefined || !/^\d{1,10}$/.test(id)) continue;
    const n = Number(id);
    if (!byName.has(name)) byName.set(name, n);
    if (!byId.has(n)) byId.set(n, name);
  }
  return { byName, byId };
}

/** The image's /etc/passwd and /etc/group (empty when absent, a link or too large). */
export async function imageAccounts(rootfs: string): Promise<{ passwd: Accounts; group: Accounts }> {
  const read = async (file: string) => {
    const { lstat } = await import('node:fs/promises');
    const path = join(rootfs, 'etc', file);
    const st = await lstat(path).catch(() => undefined);
    if (st === undefined || !st.isFile() || st.size > MAX_ACCOUNTS_BYTES) return parseAccounts('');
    return parseAccounts(await readFile(path, 'utf8'));
  };
  return { passwd: await read('passwd'), group: await read('group') };
}

export interface ImageUser {
  /** The manifest's user and group: `root`, or a name that runs as the layer's own uid/gid. */
  user: string;
  group: string;
  /** Whether the image's process is its root (uid 0). */
  root: boolean;
  /** What could not be resolved, for the import's report. */
  notes: string[];
}

/**
 * The image config's `User` (`user`, `uid`, `user:group`, `uid:gid`; empty is root) with names
 * and numbers resolved through the image's own account files, as a container runtime does.
 */
export function resolveImageUser(spec: string, accounts: { passwd: Accounts; group: Accounts }): ImageUser {
  const notes: string[] = [];
  const [u = '', g] = spec === '' ? ['root'] : spec.split(':', 2);
  const one = (value: string, db: Accounts, what: string): { name: string; id: number | undefined } => {
    if (/^\d+$/.test(value)) {
      const id = Number(value);
      const name = db.byId.get(id);
      if (name === undefined && id !== 0)
        notes.push(
          `User ${spec}: ${what} ${id} is not in the image's /etc/${what === 'uid' ? 'passwd' : 'group'}`,
        );
      return { name: id === 0 ? 'root' : (name ?? value), id };
    }
    const id = db.byName.get(value);
    if (id === undefined && value !== 'root')
      notes.push(
        `User ${spec}: ${what} name ${value} is not in the image's /etc/${what === 'uid' ? 'passwd' : 'group'}`,
      );
    return { name: id === 0 ? 'root' : value, id: value === 'root' ? 0 : id };
  };
  const user = one(u, accounts.passwd, 'uid');
  const root = user.id === 0;
  let group: string;
  if (g !== undefined && g !== '') group = one(g, accounts.group, 'gid').name;
  else if (root) group = 'root';
  else group = user.name;
  return { user: user.name, group, root, notes };
}
