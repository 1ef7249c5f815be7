// A service's volumes (manifest `volumes`, an OCI image's Volumes): each path is bound
// read-write from the layer's private data, `secure/<layer>/volumes/<service>/<path, escaped>`,
// so what the service writes there survives restarts, reboots and layer upgrades while the
// rest of its root stays read-only or ephemeral. On first use a volume is seeded with what
// the layer's root has at that path, as Docker and Podman seed a new named volume; a service
// that runs as the layer's own uid gets the copy chowned to it.
import { existsSync } from 'node:fs';
import { chown, mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../common/index.ts';
import type { Bind } from '../services/unit-spec.ts';

/** `/var/lib/db` → `var%2Flib%2Fdb`: one directory name per path, never another path's. */
export function volumeDirName(path: string): string {
  return path.slice(1).replaceAll('%', '%25').replaceAll('/', '%2F');
}

export async function volumeBinds(
  dataDir: string,
  layer: string,
  service: { name: string; volumes: readonly string[]; user: string },
  owner: { uid: number; gid: number },
  appRoot: string,
): Promise<Bind[]> {
  if (service.volumes.length === 0) return [];
  const secure = join(dataDir, 'secure', layer);
  const base = join(secure, 'volumes', service.name);
  await mkdir(base, { recursive: true, mode: 0o700 });
  for (const dir of [secure, join(secure, 'volumes'), base]) await chown(dir, owner.uid, owner.gid);
  const binds: Bind[] = [];
  for (const path of service.volumes) {
    const host = join(base, volumeDirName(path));
    if (!existsSync(host)) await seed(join(appRoot, path), host, service.user === 'root' ? undefined : owner);
    binds.push({ src: host, dest: path, readOnly: false });
  }
  return binds;
}

/** A new volume: a copy of `from` (when the root has a directory there), made beside and renamed in. */
async function seed(
  from: string,
  host: string,
  chownTo: { uid: number; gid: number } | undefined,
): Promise<void> {
  const tmp = `${host}.new`;
  await rm(tmp, { recursive: true, force: true });
  const st = await stat(from).catch(() => undefined);
  if (st?.isDirectory() === true) {
    // cp -a keeps modes, owners and links; the copy never leaves `tmp` (-T: no nesting).
    await run('cp', ['-a', '-T', '--', from, tmp], { timeout: 600_000 });
  } else {
    await mkdir(tmp, { mode: 0o755 });
  }
  if (chownTo !== undefined)
    await run('chown', ['-R', '-h', `${chownTo.uid}:${chownTo.gid}`, '--', tmp], { timeout: 600_000 });
  await rename(tmp, host);
}
