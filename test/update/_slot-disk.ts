// A small MilkyWayLinux-shaped disk for update tests on the host: the layout's CoreOS A
// (a tiny erofs, its verity tree, the vendor-signed verity-sig) and an empty slot B — with
// `bootChain`, also boot-a (a vendor-signed stage 2 naming CoreOS A) and an empty boot-b,
// which then carry the slot bits — plus CoreOS trees of other versions made into update
// bundles with the same dev vendor key. The stage-2 kernel and initramfs are a few bytes of
// filler: signed and checked like real ones, never booted.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DPS, formatVerity, makeErofs, writeGpt } from '../../formats/index.ts';
import { loadImageKeys, type ImageKeys } from '../../imagebuild/dev-keys.ts';
import { encodeVeritySig } from '../../imagebuild/verity-sig.ts';
import { EMPTY_SLOT, MILKYWAY } from '../../platform/index.ts';
import { createBundle, encodeSlot, slotUuids, type VerifiedBundle } from '../../update/index.ts';
import { signStage2 } from '../../bootchain/index.ts';

export const NOW = new Date(Math.floor(Date.now() / 1000) * 1000);
const MiB = 1024 * 1024;

export interface CoreosFiles {
  erofs: string;
  verity: string;
  veritySig: string;
  rootHash: string;
}

/** CoreOS `version` as the three files a slot holds; `filler` makes it bigger. */
export async function makeCoreos(
  dir: string,
  keys: ImageKeys,
  o: { name?: string; version: string; architecture?: string; fillerBytes?: number },
): Promise<CoreosFiles> {
  const name = o.name ?? 'milkyway';
  const tree = join(dir, `tree-${o.version}`);
  await mkdir(join(tree, 'etc'), { recursive: true });
  await writeFile(join(tree, 'etc', 'os-release'), `NAME=${name}\nVERSION_ID=${o.version}\n`);
  await writeFile(join(tree, 'filler'), Buffer.alloc(o.fillerBytes ?? 64 * 1024, o.version.charCodeAt(0)));
  const erofs = join(dir, `coreos-${o.version}.erofs`);
  const verity = join(dir, `coreos-${o.version}.verity`);
  const veritySig = join(dir, `coreos-${o.version}.verity-sig`);
  await makeErofs(tree, erofs, { sourceDateEpoch: 1_700_000_000, rootOwner: true });
  const v = await formatVerity(erofs, { hashPath: verity, seed: 'test', label: `${name}_${o.version}` });
  await writeFile(
    veritySig,
    encodeVeritySig({
      payload: { rootHash: v.rootHash, name, version: o.version, architecture: o.architecture ?? 'x86_64' },
      key: keys.vendor.key,
      chain: keys.vendor.chain,
      now: NOW,
    }),
  );
  return { erofs, verity, veritySig, rootHash: v.rootHash };
}

let stage2Count = 0;

/** The stage-2 image for CoreOS `c`, signed by the vendor (a filler kernel and initramfs). */
export async function makeStage2(
  dir: string,
  keys: ImageKeys,
  c: CoreosFiles,
  o: { name?: string; version: string; rollbackIndex: number; kernelBytes?: number },
): Promise<string> {
  const cert = keys.vendor.chain[0];
  if (cert === undefined) throw new TypeError('no vendor certificate');
  const { image } = signStage2(
    {
      kernel: new Uint8Array(o.kernelBytes ?? 5000).fill(0x4b),
      initrd: new Uint8Array(3000).fill(0x49),
      cmdline: `console=ttyS0,115200 panic=10 mway.roothash=${c.rootHash}`,
      rootHash: c.rootHash,
      name: o.name ?? 'milkyway',
      version: o.version,
      rollbackIndex: BigInt(o.rollbackIndex),
      created: BigInt(Math.floor(NOW.getTime() / 1000)),
    },
    { key: keys.vendor.key, cert },
  );
  const path = join(dir, `stage2-${o.version}-${o.rollbackIndex}-${++stage2Count}.img`);
  await writeFile(path, image);
  return path;
}

/**
 * The disk: slot A holds `a` as `milkyway_<version>`, slot B is `_empty`; 8 MiB slots (or
 * `slotMiB`). With
 * `bootChain` (the keys to sign slot A's stage 2), boot-a and boot-b come first, as built.
 */
export async function makeSlotDisk(
  dir: string,
  a: CoreosFiles,
  version: string,
  o: { bootChain?: ImageKeys; slotMiB?: number } = {},
): Promise<string> {
  const slot = (o.slotMiB ?? 8) * MiB;
  const disk = join(dir, 'disk.img');
  const ids = slotUuids(a.rootHash);
  const ro = { readOnly: true };
  const boot =
    o.bootChain === undefined
      ? []
      : [
          {
            name: 'boot-a',
            type: MILKYWAY.boot,
            sizeBytes: MiB,
            // Built as slot a known good: priority 2, successful.
            attributes: { other: encodeSlot(0n, { priority: 2, tries: 0, successful: true }) },
            image: await makeStage2(dir, o.bootChain, a, { version, rollbackIndex: 1 }),
          },
          { name: 'boot-b', type: MILKYWAY.boot, sizeBytes: MiB },
        ];
  await writeGpt(disk, {
    sizeBytes: 26 * MiB + 2 * slot,
    partitions: [
      ...boot,
      {
        name: `milkyway_${version}`,
        type: DPS.root,
        uuid: ids.data,
        sizeBytes: slot,
        attributes: ro,
        image: a.erofs,
      },
      {
        name: `milkyway_${version}.verity`,
        type: DPS.rootVerity,
        uuid: ids.hash,
        sizeBytes: 2 * MiB,
        attributes: ro,
        image: a.verity,
      },
      {
        name: `milkyway_${version}.verity-sig`,
        type: MILKYWAY.coreosVeritySig,
        sizeBytes: MiB,
        attributes: ro,
        image: a.veritySig,
      },
      { name: EMPTY_SLOT, type: DPS.root, sizeBytes: slot, attributes: ro },
      { name: EMPTY_SLOT, type: DPS.rootVerity, sizeBytes: 2 * MiB, attributes: ro },
      { name: EMPTY_SLOT, type: MILKYWAY.coreosVeritySig, sizeBytes: MiB, attributes: ro },
      { name: 'data', type: MILKYWAY.data, sizeBytes: 4 * MiB },
    ],
  });
  return disk;
}

export async function devKeys(dir: string): Promise<ImageKeys> {
  return loadImageKeys(join(dir, 'keys'), { generate: true });
}

export async function makeBundle(
  dir: string,
  keys: ImageKeys,
  c: CoreosFiles,
  o: {
    version: string;
    rollbackIndex: number;
    name?: string;
    architecture?: string;
    out?: string;
    /** Another stage-2 image than the one matching `c`, `version` and `rollbackIndex`. */
    stage2?: string;
  },
): Promise<{ path: string; bundle: VerifiedBundle }> {
  const path = o.out ?? join(dir, `update-${o.version}-${o.rollbackIndex}.mwu`);
  const bundle = await createBundle({
    out: path,
    name: o.name ?? 'milkyway',
    version: o.version,
    rollbackIndex: o.rollbackIndex,
    architecture: o.architecture ?? 'x86_64',
    rootHash: c.rootHash,
    files: {
      erofs: c.erofs,
      verity: c.verity,
      veritySig: c.veritySig,
      stage2:
        o.stage2 ??
        (await makeStage2(dir, keys, c, {
          ...(o.name === undefined ? {} : { name: o.name }),
          version: o.version,
          rollbackIndex: o.rollbackIndex,
        })),
    },
    key: keys.vendor.key,
    chain: keys.vendor.chain,
    anchors: [keys.vendorRoot],
    now: NOW,
  });
  return { path, bundle };
}
