// `mway-image bundle create`: an update bundle (doc/update-bundle.md) from slot a of a built
// disk — the CoreOS erofs (as many blocks as its verity superblock covers), the hash area (as
// long as the tree's geometry), the verity-sig JSON (to its NUL padding) and the stage 2 on
// boot-a (as long as its verified descriptor says) — signed with the vendor key of the keys
// folder the disk was built with. The name and version are the slot's `name_version`; the
// rollback index is the one the vendor signed into that stage 2 (the spec's
// bootchain.rollbackIndex): one number, which stage 1 and the machine's floor both check.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { alignUp, BootchainError, pinVendorKey, verifyStage2 } from '../bootchain/index.ts';
import { readVeritySuperblock, SECTOR, verityGeometry } from '../formats/index.ts';
import { createBundle, readDiskSlots, UpdateError, type VerifiedBundle } from '../update/index.ts';
import { loadImageKeys } from './dev-keys.ts';
import { extractPartition, readRange, withWork } from './disk-read.ts';
import { ImageError } from './image-error.ts';
import { decodeVeritySig, VERITY_SIG_MIN } from './verity-sig.ts';

export interface BundleFromDiskOptions {
  disk: string;
  out: string;
  keysDir: string;
  /** When given, must equal the rollback index of the disk's stage 2. */
  rollbackIndex?: number;
  now?: Date;
}

export async function bundleFromDisk(o: BundleFromDiskOptions): Promise<VerifiedBundle> {
  const slots = await readDiskSlots(o.disk);
  const a = slots.a;
  if (a.label === null || a.rootHash === null || a.osName === null || a.version === null)
    throw new ImageError('E_DISK_FS', `${o.disk}: CoreOS A is empty or not named NAME_VERSION`);
  if (a.boot === null)
    throw new UpdateError(
      'E_BUNDLE_STAGE2',
      `${o.disk} has no boot-a partition: it was built before the boot chain, and a bundle carries the slot's stage 2`,
    );
  const keys = await loadImageKeys(o.keysDir, { generate: false });
  const vendor = keys.vendor.chain[0];
  if (vendor === undefined) throw new ImageError('E_KEYS_MISSING', `No vendor certificate in ${o.keysDir}`);
  const bootAt = `${o.disk} partition ${a.boot.index} (boot-a)`;
  let stage2: Uint8Array;
  let signedIndex: number;
  try {
    const raw = readRange(o.disk, Number(a.boot.firstLba) * SECTOR, Number(a.boot.sizeBytes));
    const { descriptor: d } = verifyStage2(raw, {
      pinned: [pinVendorKey(vendor, { anchors: [keys.vendorRoot] })],
      rollbackFloor: 0n,
      at: bootAt,
    });
    stage2 = raw.subarray(0, alignUp(d.initrd.offset + d.initrd.size));
    signedIndex = Number(d.rollbackIndex);
  } catch (e) {
    if (!(e instanceof BootchainError)) throw e;
    throw new UpdateError(
      'E_BUNDLE_STAGE2',
      `Cannot take the stage 2 of ${bootAt}: ${e.code}: ${e.message}`,
      {
        cause: e,
        details: { bootchainCode: e.code },
      },
    );
  }
  if (o.rollbackIndex !== undefined && o.rollbackIndex !== signedIndex)
    throw new UpdateError(
      'E_BUNDLE_STAGE2',
      `Rollback index ${o.rollbackIndex} is not the ${signedIndex} signed into ${bootAt}: build the disk with "bootchain": {"rollbackIndex": ${o.rollbackIndex}}`,
      { details: { rollbackIndex: o.rollbackIndex, signed: signedIndex } },
    );
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
      stage2: join(work, 'stage2'),
    };
    await writeFile(files.stage2, stage2);
    return createBundle({
      out: o.out,
      name: a.osName as string,
      version: a.version as string,
      rollbackIndex: signedIndex,
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
