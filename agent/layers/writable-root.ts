// A service's persistent writable root (manifest `writableRoot: persistent`): the upper and
// work directories of the overlay its run mounts over the read-only root live in the layer's
// private data, `secure/<layer>/root/<service>/`, so what it writes outside its volumes is kept
// across restarts and boots, as a Podman container's rootfs is kept across `podman restart`.
// Like that rootfs it belongs to one image: when the layer's payload changes (an upgrade, a
// different build) the old upper is removed and the service starts from the new payload, as
// a container re-created from a new image does; what must outlive upgrades goes in volumes.
import { existsSync } from 'node:fs';
import { chown, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** What a persistent root was made for: the payload its upper was written over. */
const PAYLOAD_FILE = 'payload';

export interface PersistentRoot {
  /** Host directory holding `upper/` and `work/` (the runner mounts the overlay from them). */
  dir: string;
  /** True when an upper made over another payload was removed. */
  reset: boolean;
}

/**
 * Makes (or keeps) the service's persistent root directories. `payload` names the layer's
 * payload (its verity root hash); an existing upper written over another one is removed.
 */
export async function persistentRoot(
  dataDir: string,
  layer: string,
  service: string,
  owner: { uid: number; gid: number },
  payload: string,
): Promise<PersistentRoot> {
  const secure = join(dataDir, 'secure', layer);
  const roots = join(secure, 'root');
  const dir = join(roots, service);
  await mkdir(secure, { recursive: true, mode: 0o700 });
  await chown(secure, owner.uid, owner.gid);
  // root/ is the agent's (0700 root): a service of the layer that sees its private data
  // never reaches the overlay's upper or work directories through it.
  await mkdir(roots, { recursive: true, mode: 0o700 });
  await chown(roots, 0, 0);
  const was = await readFile(join(dir, PAYLOAD_FILE), 'utf8').catch(() => undefined);
  let reset = false;
  if (was !== undefined && was.trim() !== payload) {
    // Moved aside first, so a crash mid-removal never leaves a half-deleted upper in use.
    const old = `${dir}.old`;
    await rm(old, { recursive: true, force: true });
    await rename(dir, old);
    await rm(old, { recursive: true, force: true });
    reset = true;
  }
  if (!existsSync(join(dir, PAYLOAD_FILE))) {
    const tmp = `${dir}.new`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { mode: 0o700 });
    // upper/'s own owner and mode are what the merged `/` shows: the payload's root's.
    await mkdir(join(tmp, 'upper'), { mode: 0o755 });
    await mkdir(join(tmp, 'work'), { mode: 0o700 });
    await writeFile(join(tmp, PAYLOAD_FILE), `${payload}\n`);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  }
  return { dir, reset };
}
