// `mway-image bundle create`: an update bundle (doc/update-bundle.md) from CoreOS A of a built
// disk — the erofs (as many blocks as its verity superblock covers), the hash area (as long as
// the tree's geometry), the verity-sig JSON (to its NUL padding) — signed with the vendor key of
// the keys folder the disk was built with. The name and version are the slot's `name_version`.
import { join } from 'node:path';
import { readVeritySuperblock, SECTOR, verityGeometry } from '../formats/index.ts';
import { createBundle, readDiskSlots, type VerifiedBundle } from '../update/index.ts';
import { loadImageKeys } from './dev-keys.ts';
import { extractPartition, readRange, withWork } from './disk-read.ts';
import { ImageError } from './image-error.ts';
import { decodeVeritySig, VERITY_SIG_MIN } from './verity-sig.ts';

export interface BundleFromDiskOptions {
  disk: string;
  out: string;
  keysDir: string;
  rollbackIndex: number;
  now?: Date;
}

export async function bundleFromDisk(o: BundleFromDiskOptions): Promise<VerifiedBundle> {
  const slots = await readDiskSlots(o.disk);
  const a = slots.a;
  if (a.label === null || a.rootHash === null || a.osName === null || a.version === null)
    throw new ImageError('E_DISK_FS', `${o.disk}: CoreOS A is empty or not named NAME_VERSION`);
  const keys = await loadImageKeys(o.keysDir, { generate: false });
  const hashOffset = Number(a.verity.firstLba) * SECTOR;
  const sb = readVeritySuperblock(o.disk, hashOffset);
  const geo = verityGeometry(sb.dataBlocks);
  const sigRaw = readRange(o.disk, Number(a.sig.firstLba) * SECTOR, Number(a.sig.sizeBytes));
  const sig = decodeVeritySig(sigRaw, `${o.disk} partition ${a.sig.index}`);
  const envelope = JSON.parse(Buffer.from(sig.signature, 'base64').toString()) as {
    payload?: { architecture?: unknown };
  };
  const architecture = String(envelope.payload?.architecture ?? '');
  const json = sigRaw.indexOf(0);
  const sigSize = Math.max(VERITY_SIG_MIN, Math.ceil(json / 4096) * 4096);
  return withWork(async (work) => {
    const files = {
      erofs: await extractPartition(o.disk, a.data, join(work, 'coreos.erofs'), sb.dataBlocks * 4096),
      verity: await extractPartition(o.disk, a.verity, join(work, 'coreos.verity'), geo.hashSize),
      veritySig: await extractPartition(o.disk, a.sig, join(work, 'coreos.verity-sig'), sigSize),
    };
    return createBundle({
      out: o.out,
      name: a.osName as string,
      version: a.version as string,
      rollbackIndex: o.rollbackIndex,
      architecture,
      rootHash: a.rootHash as string,
      files,
      key: keys.vendor.key,
      chain: keys.vendor.chain,
      anchors: [keys.vendorRoot],
      now: o.now ?? new Date(),
    });
  });
}
