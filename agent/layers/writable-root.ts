// A service's persistent writable root (manifest `writableRoot: persistent`): the upper and
// work directories of the overlay its run mounts over the read-only root are kept on the data
// partition, in the agent's own `roots/<layer>/<service>/`, so what it writes outside its
// volumes is kept across restarts and boots, as a Podman container's rootfs is kept across
// `podman restart`. Like that rootfs it belongs to one image: when the layer's payload changes
// (an upgrade, a different build) the old upper is removed and the service starts from the new
// payload, as a container re-created from a new image does; what must outlive upgrades goes in
// volumes. With SELinux on, upper/ and work/ carry the layer's root type and pair, the context=
// its run mounts the overlay with (doc/selinux.md, "Writable roots"): the agent makes, mounts
// and removes them, only the layer's own domain writes in them.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { type DataLabels, mkdirLabelled } from './data-labels.ts';

/** What a persistent root was made for: the payload its upper was written over. */
const PAYLOAD_FILE = 'payload';

export interface PersistentRoot {
  /** Host directory holding `upper/` and `work/` (the runner mounts the overlay from them). */
  dir: string;
  /** True when an upper made over another payload was removed. */
  reset: boolean;
  /** True when an upper kept where an earlier release kept it (secure/<layer>/root/) was moved here. */
  moved: boolean;
}

/** With SELinux: the record of labels set and the layer's root context. */
export interface RootLabelling {
  labels: DataLabels;
  context: string;
}

/** Where a service's persistent root lives: `<data>/roots/<layer>/<service>`. */
export function persistentRootDir(dataDir: string, layer: string, service: string): string {
  return join(dataDir, 'roots', layer, service);
}

/**
 * Makes (or keeps) the service's persistent root directories. `payload` names the layer's
 * payload (its verity root hash); an existing upper written over another one is removed.
 */
export async function persistentRoot(
  dataDir: string,
  layer: string,
  service: string,
  payload: string,
  labelling?: RootLabelling,
): Promise<PersistentRoot> {
  const dir = persistentRootDir(dataDir, layer, service);
  // roots/ and roots/<layer>/ are the agent's (0700 root): no service reaches them.
  await mkdir(join(dataDir, 'roots', layer), { recursive: true, mode: 0o700 });
  const moved = !existsSync(dir) && (await moveEarlier(dataDir, layer, service, dir));
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
    if (labelling === undefined) {
      await mkdir(join(tmp, 'upper'), { mode: 0o755 });
      await mkdir(join(tmp, 'work'), { mode: 0o700 });
    } else {
      mkdirLabelled(join(tmp, 'upper'), labelling.context, 0o755, 0, 0);
      mkdirLabelled(join(tmp, 'work'), labelling.context, 0o700, 0, 0);
    }
    await writeFile(join(tmp, PAYLOAD_FILE), `${payload}\n`);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  }
  if (labelling !== undefined) {
    // An upper written before SELinux was on (or moved from an earlier place) is relabelled
    // once, whole; the record keeps a later boot from doing it again.
    for (const d of ['upper', 'work'])
      await labelling.labels.ensureExisting(dataDir, relative(dataDir, join(dir, d)), labelling.context, {
        recursive: true,
      });
  }
  return { dir, reset, moved };
}

/**
 * An earlier release kept the upper in the layer's private data, `secure/<layer>/root/<service>`:
 * moved here when it can be (the same file system, no policy in the way); otherwise the
 * service starts afresh and the old folder stays as it was.
 */
async function moveEarlier(dataDir: string, layer: string, service: string, dir: string): Promise<boolean> {
  const earlier = join(dataDir, 'secure', layer, 'root', service);
  if (!existsSync(join(earlier, PAYLOAD_FILE))) return false;
  try {
    await rename(earlier, dir);
    return true;
  } catch {
    return false;
  }
}
