// A small MilkyWayLinux-shaped disk for update tests on the host: the layout's CoreOS A
// (a tiny erofs, its verity tree, the vendor-signed verity-sig) and an empty slot B, plus
// CoreOS trees of other versions made into update bundles with the same dev vendor key.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DPS, formatVerity, makeErofs, writeGpt } from '../../formats/index.ts';
import { loadImageKeys, type ImageKeys } from '../../imagebuild/dev-keys.ts';
import { encodeVeritySig } from '../../imagebuild/verity-sig.ts';
import { EMPTY_SLOT, MILKYWAY } from '../../platform/index.ts';
import { createBundle, slotUuids, type VerifiedBundle } from '../../update/index.ts';

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

/** The disk: slot A holds `a` as `milkyway_<version>`, slot B is `_empty`; 8 MiB slots. */
export async function makeSlotDisk(dir: string, a: CoreosFiles, version: string): Promise<string> {
  const disk = join(dir, 'disk.img');
  const ids = slotUuids(a.rootHash);
  const ro = { readOnly: true };
  await writeGpt(disk, {
    sizeBytes: 40 * MiB,
    partitions: [
      {
        name: `milkyway_${version}`,
        type: DPS.root,
        uuid: ids.data,
        sizeBytes: 8 * MiB,
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
      { name: EMPTY_SLOT, type: DPS.root, sizeBytes: 8 * MiB, attributes: ro },
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
  o: { version: string; rollbackIndex: number; name?: string; architecture?: string; out?: string },
): Promise<{ path: string; bundle: VerifiedBundle }> {
  const path = o.out ?? join(dir, `update-${o.version}-${o.rollbackIndex}.mwu`);
  const bundle = await createBundle({
    out: path,
    name: o.name ?? 'milkyway',
    version: o.version,
    rollbackIndex: o.rollbackIndex,
    architecture: o.architecture ?? 'x86_64',
    rootHash: c.rootHash,
    files: { erofs: c.erofs, verity: c.verity, veritySig: c.veritySig },
    key: keys.vendor.key,
    chain: keys.vendor.chain,
    anchors: [keys.vendorRoot],
    now: NOW,
  });
  return { path, bundle };
}
