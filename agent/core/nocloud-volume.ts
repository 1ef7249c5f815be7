// Finding and reading the cloud-init NoCloud seed volume: the block device whose file system
// (FAT or ISO 9660) is labelled cidata (either case, as cloud-init accepts), or the device or
// image file the config names. The volume is read by formats/'s readers and never mounted, so
// a crafted file system meets a bounded parser in the agent, not a kernel driver.
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileReadAt, probeVolume, readVolumeRootFiles, type VolumeInfo } from '../../formats/index.ts';
import { AgentError } from './agent-error.ts';
import { SEED_FILES, SEED_MAX_BYTES } from './nocloud-seed.ts';

export const SEED_LABEL = 'cidata';

export interface SeedVolume {
  /** The device or file read. */
  source: string;
  info: VolumeInfo;
  files: Map<string, Uint8Array>;
}

/** Devices never holding a seed: loop devices (layers), device-mapper (verity), RAM disks. */
const SKIP = /^(loop|ram|zram|dm-|md)\d*/;

function volumeError(source: string, message: string, cause?: unknown): AgentError {
  return new AgentError('E_SEED_VOLUME', `Cannot read the cloud-init seed ${source}: ${message}`, {
    path: source,
    ...(cause === undefined ? {} : { cause }),
  });
}

async function readSeedFrom(source: string, requireLabel: boolean): Promise<SeedVolume | undefined> {
  // By type before opening: a FIFO in its place would hang the boot.
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(source);
  } catch (e) {
    if (requireLabel) return undefined;
    throw volumeError(source, (e as Error).message, e);
  }
  if (!st.isFile() && !st.isBlockDevice()) {
    if (requireLabel) return undefined;
    throw volumeError(source, 'not a block device or an image file');
  }
  let h: Awaited<ReturnType<typeof open>>;
  try {
    h = await open(source, 'r');
  } catch (e) {
    // An empty CD drive (ENOMEDIUM), a device we may not read: not the seed.
    if (requireLabel) return undefined;
    throw volumeError(source, (e as Error).message, e);
  }
  try {
    const readAt = fileReadAt(h);
    let info: VolumeInfo | undefined;
    try {
      info = await probeVolume(readAt, source);
    } catch (e) {
      // A damaged volume that is not the seed must not stop the search.
      if (requireLabel) return undefined;
      throw volumeError(source, (e as Error).message, e);
    }
    if (info === undefined) {
      if (requireLabel) return undefined;
      throw volumeError(source, 'neither a FAT nor an ISO 9660 file system');
    }
    if (requireLabel && info.label.toLowerCase() !== SEED_LABEL) return undefined;
    try {
      const files = await readVolumeRootFiles(readAt, info, SEED_FILES, {
        maxBytes: Math.max(...Object.values(SEED_MAX_BYTES)),
        source,
      });
      return { source, info, files };
    } catch (e) {
      throw volumeError(source, (e as Error).message, e);
    }
  } finally {
    await h.close();
  }
}

/**
 * `device` is `auto` (every block device of `sysBlock`, by name, the first labelled cidata) or a
 * device or image file. `auto` finding nothing resolves undefined; a named source that cannot
 * be read is E_SEED_VOLUME.
 */
export async function readSeedVolume(
  device: string,
  o: { sysBlock?: string; devDir?: string } = {},
): Promise<SeedVolume | undefined> {
  if (device !== 'auto') return readSeedFrom(device, false);
  const names = (await readdir(o.sysBlock ?? '/sys/class/block').catch(() => [] as string[])).sort();
  for (const n of names) {
    if (SKIP.test(n)) continue;
    const found = await readSeedFrom(join(o.devDir ?? '/dev', n), true);
    if (found !== undefined) return found;
  }
  return undefined;
}
