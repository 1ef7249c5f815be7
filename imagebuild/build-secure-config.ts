// The secure-config partition's image: erofs holding `secure.json`, the spec's secure config
// signed by the user key (secure-config.ts), which the agent verifies before it reads it.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeErofs } from '../formats/index.ts';
import { SECURE_CONFIG_FILE } from '../platform/index.ts';
import type { BuildContext } from './build-context.ts';
import type { PartitionContent } from './build-disk.ts';
import type { ImageTrust } from './build-trust.ts';
import { signSecureConfig } from './secure-config.ts';

/** Step `erofs secure-config`: the partition's image. */
export async function buildSecureConfig(ctx: BuildContext, trust: ImageTrust): Promise<PartitionContent> {
  ctx.progress.step('erofs secure-config');
  const dir = join(ctx.work, 'secure-config');
  await mkdir(dir);
  const { key, chain } = trust.keys.user;
  await writeFile(
    join(dir, SECURE_CONFIG_FILE),
    signSecureConfig({ payload: ctx.spec.secureConfig, key, chain, now: ctx.now }),
  );
  const image = join(ctx.work, 'secure-config.img');
  await makeErofs(dir, image, {
    sourceDateEpoch: ctx.epoch,
    rootOwner: true,
    uuid: ctx.uuid('secure-config'),
  });
  return { image, contentBytes: await ctx.written(image) };
}
