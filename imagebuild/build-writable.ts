// The ext4 partitions of the layout (platform/disk-layout.ts): the two dynamic config
// partitions (empty), layer storage (the preinstalled `.mwl` files), data (`common/`,
// `secure/`, `group/`) and the optional peer identity. Each is made from a folder at its
// final size, so the partition is the image.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { makeExt4 } from '../formats/index.ts';
import { DISK_LAYOUT, type PartitionRole, type PartitionRow, partitionBytes } from '../platform/index.ts';
import type { BuildContext } from './build-context.ts';
import type { PartitionContent } from './build-disk.ts';

/** What an ext4 partition is made from: a folder, and the bytes it must have room for. */
export interface Ext4Source {
  dir: string;
  minBytes?: number;
}

/**
 * Step `ext4 LABEL`: an ext4 image of `source.dir` labelled with (the first 16 characters of)
 * the partition's GPT name, as big as the row's size rule makes it for `minBytes`.
 */
async function buildExt4(
  ctx: BuildContext,
  row: PartitionRow,
  source: Ext4Source,
): Promise<PartitionContent> {
  if (typeof row.label !== 'string') throw new RangeError(`Partition ${row.role} has no fixed label`);
  const out = join(ctx.work, `${row.label}.img`);
  ctx.progress.step(`ext4 ${row.label}`);
  await makeExt4(source.dir, out, {
    sourceDateEpoch: ctx.epoch,
    rootOwner: true,
    uuid: ctx.uuid(row.label),
    label: row.label.slice(0, 16),
    size: partitionBytes(row, ctx.spec.partitions, source.minBytes ?? 0),
  });
  return { image: out, contentBytes: await ctx.written(out) };
}

/** Every ext4 row in disk order from its source; an optional row without one is left out. */
export async function buildExt4Partitions(
  ctx: BuildContext,
  sources: Partial<Record<PartitionRole, Ext4Source>>,
): Promise<Partial<Record<PartitionRole, PartitionContent>>> {
  const out: Partial<Record<PartitionRole, PartitionContent>> = {};
  for (const row of DISK_LAYOUT) {
    if (row.filesystem !== 'ext4') continue;
    const source = sources[row.role];
    if (source === undefined) {
      if (row.optional === true) continue;
      throw new RangeError(`Cannot build partition ${row.role}: no source folder`);
    }
    out[row.role] = await buildExt4(ctx, row, source);
  }
  return out;
}

/** An empty folder, for partitions that start empty. */
export async function emptyFolder(ctx: BuildContext): Promise<string> {
  const dir = join(ctx.work, 'empty');
  await mkdir(dir, { recursive: true });
  return dir;
}

/** The data partition's skeleton: `common/` (all layers), `secure/<layer>/`, `group/<group>/`. */
export async function dataSkeleton(ctx: BuildContext): Promise<string> {
  const dir = join(ctx.work, 'data');
  for (const d of ['common', 'secure', 'group']) await mkdir(join(dir, d), { recursive: true });
  return dir;
}
