// The disk: every partition image laid out in GPT (doc/disk-layout.md), written under a
// temporary name in the work folder; the caller renames it into place once all is done.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DPS, type GptPartitionSpec, writeGpt } from '../formats/index.ts';
import { type BuildContext, MiB, roundMiB } from './build-context.ts';
import type { CoreosImage } from './build-coreos.ts';
import type { CertificatesImage } from './build-trust.ts';
import { coreosLabels, EMPTY_SLOT, PARTLABEL } from './disk-layout.ts';
import { ImageError } from './image-error.ts';
import { verityPartitionUuids } from './initramfs-init.ts';
import { MILKYWAY } from './partition-types.ts';

export interface BuiltPartition {
  index: number;
  name: string;
  role: string;
  type: string;
  uuid: string;
  sizeBytes: number;
  filesystem: string | null;
  rootHash?: string;
}

/** The partition images the disk is assembled from. */
export interface DiskImages {
  esp: string;
  coreos: CoreosImage;
  certificates: CertificatesImage;
  secureConfig: string;
  secureDynamicConfig: string;
  dynamicConfig: string;
  layers: string;
  data: string;
  peerIdentity: string | undefined;
}

export interface BuiltDisk {
  /** The disk file in the work folder. */
  path: string;
  sizeBytes: number;
  partitions: BuiltPartition[];
}

/** Step `GPT disk`: sizes every partition, checks CoreOS fits its slot, writes the GPT and the images. */
export async function buildDisk(ctx: BuildContext, images: DiskImages): Promise<BuiltDisk> {
  const { spec, progress, uuid } = ctx;
  const P = spec.partitions;
  const cv = images.coreos.verity;
  const certv = images.certificates.verity;
  const coreosSize = images.coreos.sizeBytes;
  const labels = coreosLabels(spec.name, spec.version);
  progress.step('GPT disk');
  const slot = P.coreos > 0 ? P.coreos * MiB : roundMiB(coreosSize * 1.25);
  if (slot < coreosSize) {
    throw new ImageError(
      'E_SPEC_INVALID',
      `CoreOS is ${coreosSize} bytes; partitions.coreos (${P.coreos} MiB) is too small`,
      {
        details: { field: 'partitions.coreos', needed: coreosSize },
      },
    );
  }
  const hashSlot = roundMiB(cv.hashSize * 1.25);
  const ids = verityPartitionUuids(cv.rootHash);
  const ro = { readOnly: true };
  const size = async (path: string) => (await stat(path)).size;
  const parts: (GptPartitionSpec & { role: string; filesystem: string | null; rootHash?: string })[] = [
    {
      role: 'esp',
      name: PARTLABEL.esp,
      type: DPS.esp,
      uuid: uuid('esp-part'),
      sizeBytes: P.esp * MiB,
      image: images.esp,
      filesystem: 'vfat',
    },
    {
      role: 'coreos-a',
      name: labels.data,
      type: DPS.root,
      uuid: ids.data,
      sizeBytes: slot,
      image: images.coreos.image,
      attributes: ro,
      filesystem: 'erofs',
      rootHash: cv.rootHash,
    },
    {
      role: 'coreos-a-verity',
      name: labels.verity,
      type: DPS.rootVerity,
      uuid: ids.hash,
      sizeBytes: hashSlot,
      image: images.coreos.hash,
      attributes: ro,
      filesystem: 'verity',
      rootHash: cv.rootHash,
    },
    {
      role: 'coreos-a-verity-sig',
      name: labels.sig,
      type: MILKYWAY.coreosVeritySig,
      uuid: uuid('coreos-a-sig'),
      sizeBytes: MiB,
      image: images.coreos.sig,
      attributes: ro,
      filesystem: 'verity-sig',
    },
    {
      role: 'coreos-b',
      name: EMPTY_SLOT,
      type: DPS.root,
      uuid: uuid('coreos-b'),
      sizeBytes: slot,
      attributes: ro,
      filesystem: null,
    },
    {
      role: 'coreos-b-verity',
      name: EMPTY_SLOT,
      type: DPS.rootVerity,
      uuid: uuid('coreos-b-verity'),
      sizeBytes: hashSlot,
      attributes: ro,
      filesystem: null,
    },
    {
      role: 'coreos-b-verity-sig',
      name: EMPTY_SLOT,
      type: MILKYWAY.coreosVeritySig,
      uuid: uuid('coreos-b-sig'),
      sizeBytes: MiB,
      attributes: ro,
      filesystem: null,
    },
    {
      role: 'certificates',
      name: PARTLABEL.certificates,
      type: MILKYWAY.certificates,
      uuid: uuid('certificates-part'),
      sizeBytes: Math.max(P.certificates * MiB, roundMiB(certv.hashOffset + certv.hashSize)),
      image: images.certificates.image,
      attributes: ro,
      filesystem: 'erofs+verity',
      rootHash: certv.rootHash,
    },
    {
      role: 'secure-config',
      name: PARTLABEL.secureConfig,
      type: MILKYWAY.secureConfig,
      uuid: uuid('secure-config-part'),
      sizeBytes: Math.max(P.secureConfig * MiB, roundMiB(await size(images.secureConfig))),
      image: images.secureConfig,
      attributes: ro,
      filesystem: 'erofs',
    },
    {
      role: 'secure-dynamic-config',
      name: PARTLABEL.secureDynamicConfig,
      type: MILKYWAY.secureDynamicConfig,
      uuid: uuid('sdc-part'),
      sizeBytes: await size(images.secureDynamicConfig),
      image: images.secureDynamicConfig,
      filesystem: 'ext4',
    },
    {
      role: 'dynamic-config',
      name: PARTLABEL.dynamicConfig,
      type: MILKYWAY.dynamicConfig,
      uuid: uuid('dc-part'),
      sizeBytes: await size(images.dynamicConfig),
      image: images.dynamicConfig,
      filesystem: 'ext4',
    },
    {
      role: 'layers',
      name: PARTLABEL.layers,
      type: MILKYWAY.layers,
      uuid: uuid('layers-part'),
      sizeBytes: await size(images.layers),
      image: images.layers,
      filesystem: 'ext4',
    },
    {
      role: 'data',
      name: PARTLABEL.data,
      type: MILKYWAY.data,
      uuid: uuid('data-part'),
      sizeBytes: await size(images.data),
      image: images.data,
      filesystem: 'ext4',
    },
  ];
  if (images.peerIdentity !== undefined)
    parts.push({
      role: 'peer-identity',
      name: PARTLABEL.peerIdentity,
      type: MILKYWAY.peerIdentity,
      uuid: uuid('peer-part'),
      sizeBytes: await size(images.peerIdentity),
      image: images.peerIdentity,
      attributes: ro,
      filesystem: 'ext4',
    });
  // 1 MiB before the first partition, 1 MiB for the backup GPT and alignment slack.
  const sizeBytes = parts.reduce((a, p) => a + p.sizeBytes, 0) + 2 * MiB;
  const path = join(ctx.work, 'disk.img');
  const gpt = await writeGpt(path, {
    sizeBytes,
    diskGuid: uuid('disk'),
    onProgress: (done, total) => progress.bytes(done, total),
    partitions: parts.map(({ role: _r, filesystem: _f, rootHash: _h, ...p }) => p),
  });
  const partitions = gpt.partitions.map((g, i) => {
    const p = parts[i] as (typeof parts)[number];
    return {
      index: g.index,
      name: g.name,
      role: p.role,
      type: g.type,
      uuid: g.uuid,
      sizeBytes: Number(g.sizeBytes),
      filesystem: p.filesystem,
      ...(p.rootHash === undefined ? {} : { rootHash: p.rootHash }),
    };
  });
  return { path, sizeBytes, partitions };
}
