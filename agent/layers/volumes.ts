// A service's volumes (manifest `volumes`, an OCI image's Volumes): each path is bound
// read-write from the layer's private data, `secure/<layer>/volumes/<service>/<path, escaped>`,
// so what the service writes there survives restarts, reboots and layer upgrades while the
// rest of its root stays read-only or ephemeral. On first use a volume is seeded with what
// the layer's root has at that path, as Docker and Podman seed a new named volume; a service
// that runs as the layer's own uid gets the copy chowned to it.
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { run } from '../../common/index.ts';
import { AgentError } from '../core/agent-error.ts';
import type { Bind } from '../services/unit-spec.ts';
import type { DataLabels } from './data-labels.ts';

/** `/var/lib/db` → `var%2Flib%2Fdb`: one directory name per path, never another path's. */
export function volumeDirName(path: string): string {
  return path.slice(1).replaceAll('%', '%25').replaceAll('/', '%2F');
}

export async function volumeBinds(
  dataDir: string,
  layer: string,
  service: { name: string; volumes: readonly string[]; user: string },
  /** The layer's own dynamic uid and gid: a non-root service's copy is chowned to it. */
  owner: { uid: number; gid: number },
  /** The owner of the layer's private data (privateDataOwner in data-dirs.ts). */
  dataOwner: { uid: number; gid: number },
  appRoot: string,
  /** With SELinux: the layer's data context (`mway_<layer>_data_t` at its pair). */
  dataContext?: string,
): Promise<Bind[]> {
  if (service.volumes.length === 0) return [];
  const secure = join(dataDir, 'secure', layer);
  const base = join(secure, 'volumes', service.name);
  await mkdir(base, { recursive: true, mode: 0o700 });
  for (const dir of [secure, join(secure, 'volumes'), base]) await chown(dir, dataOwner.uid, dataOwner.gid);
  const binds: Bind[] = [];
  for (const path of service.volumes) {
    const host = join(base, volumeDirName(path));
    const chownTo = service.user === 'root' ? undefined : owner;
    if (existsSync(host)) {
      // Seeded before: a volume is kept as the service left it.
    } else if (dataContext === undefined) await seed(join(appRoot, path), host, chownTo);
    else {
      const staging = join(dataDir, 'volume-seeding', layer, service.name, volumeDirName(path));
      await seedLabelled(join(appRoot, path), host, chownTo, staging, dataContext);
    }
    binds.push({ src: host, dest: path, readOnly: false });
  }
  return binds;
}

/** `from` copied to `tmp` (cp -a: modes, owners, links; never nested), or an empty directory. */
async function copyInto(from: string, tmp: string, chownTo: { uid: number; gid: number } | undefined) {
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
}

/** A new volume: a copy of `from` (when the root has a directory there), made beside and renamed in. */
async function seed(from: string, host: string, chownTo: { uid: number; gid: number } | undefined) {
  const tmp = `${host}.new`;
  await copyInto(from, tmp, chownTo);
  await rename(tmp, host);
}

/**
 * The same under SELinux, where the base policy lets the agent make folders in a layer's
 * private data and relabel into it, but never list, rename or remove there, nor create files
 * (layers.cil). So the copy is made in the agent's own data (`volume-seeding/…`), its contents
 * relabelled to the layer's data context deepest first (the agent lists a folder while it is
 * still its own), then the folder, still the agent's, renamed in, and relabelled last.
 * Symbolic links keep the agent's label: no domain may relabel a link into layer data.
 */
async function seedLabelled(
  from: string,
  host: string,
  chownTo: { uid: number; gid: number } | undefined,
  staging: string,
  context: string,
): Promise<void> {
  await mkdir(dirname(staging), { recursive: true, mode: 0o700 });
  await copyInto(from, staging, chownTo);
  const inside: string[] = [];
  const walk = async (dir: string) => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      if (!e.isSymbolicLink()) inside.push(p);
    }
  };
  await walk(staging);
  for (let i = 0; i < inside.length; i += 500)
    await run('chcon', ['-h', '--', context, ...inside.slice(i, i + 500)], { timeout: 600_000 });
  await rename(staging, host);
  await run('chcon', ['-h', '--', context, host], { timeout: 60_000 });
}

/**
 * A service's group volumes (manifest `groupVolumes`, a compose volume several services mount):
 * each is its group's data, `group/<group>/volumes/<volume>` (2770 root:<group gid>, as the
 * group's folder; with SELinux the group's type at s0, which every member's pair reaches),
 * bound read-write at its path. While it is absent or empty it is seeded with what this service's
 * root has at that path, as Docker seeds an empty named volume from the first container that
 * mounts it (seedGroupVolume). A group the secure config does not grant the layer refuses the
 * layer: its service would run without the data it shares.
 */
export async function groupVolumeBinds(
  dataDir: string,
  layer: string,
  service: { name: string; groupVolumes: readonly { group: string; volume: string; path: string }[] },
  /** The layer's granted groups and their gids. */
  granted: Readonly<Record<string, number>>,
  labelling?: { labels: DataLabels; groupData: (group: string) => string },
  /** The layer's root: what it has at a volume's path seeds the volume while it is empty. */
  appRoot?: string,
): Promise<Bind[]> {
  const binds: Bind[] = [];
  for (const g of service.groupVolumes) {
    const gid = granted[g.group];
    if (gid === undefined)
      throw new AgentError(
        'E_LAYER_ACTIVATE',
        `Cannot start ${layer}/${service.name}: its volume ${g.volume} at ${g.path} is group ${g.group}'s data, which the secure config does not grant ${layer}`,
      );
    const rels = [join('group', g.group, 'volumes'), join('group', g.group, 'volumes', g.volume)];
    for (const rel of rels) {
      if (rel === rels[1] && appRoot !== undefined)
        await seedGroupVolume(
          join(appRoot, g.path),
          join(dataDir, rel),
          `${layer}/${service.name}`,
          gid,
          labelling?.groupData(g.group),
        );
      if (labelling === undefined) {
        const dir = join(dataDir, rel);
        await mkdir(dir, { recursive: true, mode: 0o2770 });
        await chown(dir, 0, gid);
        await chmod(dir, 0o2770);
      } else
        await labelling.labels.ensure(dataDir, rel, labelling.groupData(g.group), {
          mode: 0o2770,
          uid: 0,
          gid,
          recursive: false,
        });
    }
    binds.push({ src: join(dataDir, rels[1] as string), dest: g.path, readOnly: false });
  }
  return binds;
}

/** Whether `dir` is absent or holds nothing. */
async function absentOrEmpty(dir: string): Promise<boolean> {
  const entries = await readdir(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [];
    throw e;
  });
  return entries.length === 0;
}

/**
 * Seeds a group volume (`host`) with the image's content at its path (`from`) while the volume
 * is absent or empty: a copy made beside it (`cp -a`, the group's own label rather than the
 * payload's), group-owned and group-writable as the group's data is (root:<gid>, folders setgid),
 * then renamed over the empty folder. Two members seeding at once: the first rename wins, the
 * other copy is dropped. A root with nothing there leaves the volume as it is.
 */
async function seedGroupVolume(
  from: string,
  host: string,
  who: string,
  gid: number,
  context: string | undefined,
): Promise<void> {
  if (!(await absentOrEmpty(host))) return;
  const st = await stat(from).catch(() => undefined);
  if (st?.isDirectory() !== true || (await readdir(from)).length === 0) return;
  const tmp = `${host}.seed-${who.replaceAll('/', '_')}`;
  await rm(tmp, { recursive: true, force: true });
  try {
    await mkdir(dirname(host), { recursive: true });
    await run('cp', ['-a', '--no-preserve=context', '-T', '--', from, tmp], { timeout: 600_000 });
    await run('chown', ['-R', '-h', `0:${gid}`, '--', tmp], { timeout: 600_000 });
    await run('chmod', ['-R', 'g+rwX,o-rwx', '--', tmp], { timeout: 600_000 });
    await run('find', [tmp, '-type', 'd', '-exec', 'chmod', 'g+s', '{}', '+'], { timeout: 600_000 });
    if (context !== undefined) await run('chcon', ['-R', '-h', '--', context, tmp], { timeout: 600_000 });
    try {
      // rename(2) replaces an empty folder, never one a member seeded meanwhile.
      await rename(tmp, host);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
