// The disks fact (Talos's `Disks` resource, Salt's `disks` grain): every block device the
// kernel lists in /sys/block, read from sysfs (Documentation/ABI/stable/sysfs-block). Virtual
// devices (loop, ram, zram, dm-) are the agent's own machinery or another tenant's, so they
// are reported only when this peer mounts them (its dm-verity root, say).
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type DiskFact, MAX_DISKS } from '../../control/wire/index.ts';

const VIRTUAL = /^(loop|ram|zram|dm-)/;

async function attr(dir: string, name: string): Promise<string | undefined> {
  try {
    // sysfs attributes are small; a cap keeps a strange one from growing the facts.
    const s = (await readFile(join(dir, name), 'utf8')).slice(0, 256).trim();
    return s === '' ? undefined : s;
  } catch {
    return undefined;
  }
}

/** `major:minor` of every mount in a mountinfo(5) text (field 3). */
export function mountedDevices(mountinfo: string): Set<string> {
  const out = new Set<string>();
  for (const line of mountinfo.split('\n')) {
    const dev = line.split(' ')[2];
    if (dev !== undefined && /^\d+:\d+$/.test(dev)) out.add(dev);
  }
  return out;
}

/** `major:minor` of a block device and of its partitions (`/sys/block/X/X1/dev`). */
async function devNumbers(dir: string, name: string): Promise<string[]> {
  const own = await attr(dir, 'dev');
  const parts: string[] = [];
  try {
    for (const e of await readdir(dir)) {
      if (!e.startsWith(name)) continue;
      const d = await attr(join(dir, e), 'dev');
      if (d !== undefined) parts.push(d);
    }
  } catch {
    // Not a directory we can list: the device's own number is all there is.
  }
  return own === undefined ? parts : [own, ...parts];
}

/**
 * Reads the block devices under `sysRoot`/block (`/sys` on a machine; a test hands a fake
 * tree). `mounted` is the `major:minor` set of this peer's mounts: a virtual device is kept
 * only when it or one of its partitions is in it. At most MAX_DISKS, by name.
 */
export async function readDisks(
  sysRoot = '/sys',
  mounted: ReadonlySet<string> = new Set(),
): Promise<Record<string, DiskFact>> {
  const block = join(sysRoot, 'block');
  let names: string[];
  try {
    names = (await readdir(block)).sort();
  } catch {
    return {}; // No sysfs (a bare test root): no disks rather than a guess.
  }
  const out: Record<string, DiskFact> = {};
  let n = 0;
  for (const name of names) {
    if (n >= MAX_DISKS) break;
    if (!/^[A-Za-z0-9._:+-]{1,64}$/.test(name)) continue;
    const dir = join(block, name);
    if (VIRTUAL.test(name) && !(await devNumbers(dir, name)).some((d) => mounted.has(d))) continue;
    const sectors = await attr(dir, 'size');
    if (sectors === undefined || !/^\d+$/.test(sectors)) continue;
    const model = await attr(dir, 'device/model');
    const serial = (await attr(dir, 'serial')) ?? (await attr(dir, 'device/serial'));
    out[name] = {
      sizeBytes: Number(sectors) * 512,
      ...(model === undefined ? {} : { model }),
      ...(serial === undefined ? {} : { serial }),
      rotational: (await attr(dir, 'queue/rotational')) === '1',
      readOnly: (await attr(dir, 'ro')) === '1',
    };
    n++;
  }
  return out;
}

/** The disks of this machine, virtual ones only when mounted in this mount namespace. */
export async function gatherDisks(
  sysRoot = '/sys',
  mountinfoPath = '/proc/self/mountinfo',
): Promise<Record<string, DiskFact>> {
  let mounted = new Set<string>();
  try {
    mounted = mountedDevices(await readFile(mountinfoPath, 'utf8'));
  } catch {
    // No /proc: no virtual device counts as ours.
  }
  return readDisks(sysRoot, mounted);
}
