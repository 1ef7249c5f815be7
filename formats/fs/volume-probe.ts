// Which file system a volume holds (FAT or ISO 9660, the two a cloud-init NoCloud seed may use)
// and its label, and its root files read through the matching reader; nothing is mounted.
import { probeFat, readFatRootFiles } from './fat-read.ts';
import { probeIso9660, readIso9660RootFiles } from './iso9660-read.ts';
import type { ReadAt, RootFileOptions, RootFiles, VolumeInfo } from './volume-read.ts';

/** The volume's type and label, or undefined when it is neither FAT nor ISO 9660. */
export async function probeVolume(readAt: ReadAt, source?: string): Promise<VolumeInfo | undefined> {
  // ISO 9660 first: its first 32 KiB are free for a boot sector, which may look like FAT's.
  return (await probeIso9660(readAt, source)) ?? (await probeFat(readAt, source));
}

/** The root files called `names` of a volume `probeVolume` named. */
export function readVolumeRootFiles(
  readAt: ReadAt,
  info: VolumeInfo,
  names: readonly string[],
  o: RootFileOptions,
): Promise<RootFiles> {
  return info.type === 'iso9660'
    ? readIso9660RootFiles(readAt, names, o)
    : readFatRootFiles(readAt, names, o);
}
