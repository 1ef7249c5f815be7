// The disk: one GPT entry per row of the disk layout table (platform/disk-layout.ts), in its
// order, sized by the row's rule and filled with the image the artefact builders made for that
// role. CoreOS B mirrors A's sizes and stays empty. Written under a temporary name in the work
// folder; the caller renames it into place once all is done.
import { join } from 'node:path';
import { type GptPartitionSpec, writeGpt } from '../formats/index.ts';
import {
  contentName,
  DISK_LAYOUT,
  EMPTY_SLOT,
  type PartitionRole,
  type PartitionRow,
  partitionBytes,
  partitionLabel,
  rowAttributes,
} from '../platform/index.ts';
import { type BuildContext, MiB } from './build-context.ts';
import { ImageError } from './image-error.ts';
import { verityPartitionUuids } from './initramfs-init.ts';

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

/** What one partition holds: its image (none for an empty slot), the bytes it needs, its root hash. */
export interface PartitionContent {
  image?: string;
  contentBytes: number;
  rootHash?: string;
}

export interface BuiltDisk {
  /** The disk file in the work folder. */
  path: string;
  sizeBytes: number;
  partitions: BuiltPartition[];
}

/** The slot-A row a slot-B row mirrors (same suffix): B is sized for an update of the same CoreOS. */
function slotATwin(row: PartitionRow): PartitionRow | undefined {
  if (row.slot !== 'b' || typeof row.label === 'string') return undefined;
  const suffix = row.label.slotSuffix;
  return DISK_LAYOUT.find(
    (r) => r.slot === 'a' && typeof r.label !== 'string' && r.label.slotSuffix === suffix,
  );
}

/** The partition's GPT entry and what the build summary says of it. */
function partitionSpec(
  ctx: BuildContext,
  row: PartitionRow,
  content: PartitionContent,
): GptPartitionSpec & { row: PartitionRow; rootHash?: string } {
  const { spec } = ctx;
  const sizeBytes = partitionBytes(row, spec.partitions, content.contentBytes);
  const key = row.size.spec;
  if (row.size.grow !== true && sizeBytes < content.contentBytes) {
    const what = row.verity === 'data' ? 'CoreOS' : `The ${row.role} partition's content`;
    const mib = key === undefined ? row.size.defaultMiB : spec.partitions[key];
    throw new ImageError(
      'E_SPEC_INVALID',
      `${what} is ${content.contentBytes} bytes; partitions.${key ?? row.role} (${mib} MiB) is too small`,
      { details: { field: `partitions.${key ?? row.role}`, needed: content.contentBytes } },
    );
  }
  const filled = content.image !== undefined;
  const ids = content.rootHash === undefined ? undefined : verityPartitionUuids(content.rootHash);
  const uuid =
    ids !== undefined && row.verity === 'data'
      ? ids.data
      : ids !== undefined && row.verity === 'hash'
        ? ids.hash
        : ctx.uuid(row.uuidPurpose);
  const attributes = rowAttributes(row);
  return {
    row,
    name: partitionLabel(row, filled ? `${spec.name}_${spec.version}` : EMPTY_SLOT),
    type: row.type,
    uuid,
    sizeBytes,
    ...(Object.keys(attributes).length === 0 ? {} : { attributes }),
    ...(content.image === undefined ? {} : { image: content.image }),
    ...(content.rootHash === undefined ? {} : { rootHash: content.rootHash }),
  };
}

/**
 * Step `GPT disk`: sizes every partition of the layout, checks each exact-size partition holds
 * its content (CoreOS in `partitions.coreos`), writes the GPT and copies the images in.
 * `contents` has an entry for every role but the empty slot's and the optional ones left out.
 */
export async function buildDisk(
  ctx: BuildContext,
  contents: Partial<Record<PartitionRole, PartitionContent>>,
): Promise<BuiltDisk> {
  ctx.progress.step('GPT disk');
  const parts: ReturnType<typeof partitionSpec>[] = [];
  for (const row of DISK_LAYOUT) {
    const twin = slotATwin(row);
    const content =
      contents[row.role] ??
      (twin === undefined ? undefined : { contentBytes: contents[twin.role]?.contentBytes ?? 0 });
    if (content === undefined) {
      if (row.optional === true) continue;
      throw new RangeError(`Cannot assemble the disk: no content for partition ${row.role}`);
    }
    parts.push(partitionSpec(ctx, row, content));
  }
  // 1 MiB before the first partition, 1 MiB for the backup GPT and alignment slack.
  const sizeBytes = parts.reduce((a, p) => a + p.sizeBytes, 0) + 2 * MiB;
  const path = join(ctx.work, 'disk.img');
  const gpt = await writeGpt(path, {
    sizeBytes,
    diskGuid: ctx.uuid('disk'),
    onProgress: (done, total) => ctx.progress.bytes(done, total),
    partitions: parts.map(({ row: _r, rootHash: _h, ...p }) => p),
  });
  const partitions = gpt.partitions.map((g, i): BuiltPartition => {
    const p = parts[i] as (typeof parts)[number];
    return {
      index: g.index,
      name: g.name,
      role: p.row.role,
      type: g.type,
      uuid: g.uuid,
      sizeBytes: Number(g.sizeBytes),
      filesystem: p.image === undefined ? null : contentName(p.row),
      ...(p.rootHash === undefined ? {} : { rootHash: p.rootHash }),
    };
  });
  return { path, sizeBytes, partitions };
}
