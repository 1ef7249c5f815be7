// The ext4 partitions: the two dynamic config partitions (empty), layer storage (the
// preinstalled `.mwl` files), data (`common/`, `secure/`, `group/`) and the optional peer
// identity. Each is made from a folder at its final size, so the partition is the image.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { makeExt4 } from '../formats/index.ts';
import { type BuildContext, MiB, roundMiB } from './build-context.ts';

/**
 * Step `ext4 LABEL`: an ext4 image of `dir` labelled with (the first 16 characters of) the
 * partition's GPT name, `mib` MiB or, when more, `minBytes` rounded up to whole MiB.
 */
export async function buildExt4(
  ctx: BuildContext,
  o: { label: string; dir: string; mib: number; minBytes?: number },
): Promise<string> {
  const out = join(ctx.work, `${o.label}.img`);
  ctx.progress.step(`ext4 ${o.label}`);
  await makeExt4(o.dir, out, {
    sourceDateEpoch: ctx.epoch,
    rootOwner: true,
    uuid: ctx.uuid(o.label),
    label: o.label.slice(0, 16),
    size: Math.max(o.mib * MiB, roundMiB(o.minBytes ?? 0)),
  });
  await ctx.written(out);
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
