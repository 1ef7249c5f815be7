// CoreOS A as the disk carries it: the root tree (coreos-tree.ts) made into an uncompressed
// erofs, its dm-verity hash area and the verity-sig the vendor key signs over the root hash
// (doc/disk-layout.md "CoreOS slots and the root hash"). The tree is removed once the erofs
// exists, so a build holds one copy of CoreOS at a time. CoreOS carries its SELinux policy
// (build-policy.ts) and every file's label, written by mkfs.erofs from that policy.
import { lstat, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatVerity, makeErofs, type VerityResult } from '../formats/index.ts';
import type { BuildContext } from './build-context.ts';
import type { ImageTrust } from './build-trust.ts';
import { type CoreosPolicy, writeCoreosPolicy } from './build-policy.ts';
import { buildCoreosTree } from './coreos-tree.ts';
import { encodeVeritySig } from './verity-sig.ts';

export interface CoreosImage {
  /** The erofs (the slot's data partition). */
  image: string;
  /** Its hash area (the slot's verity partition). */
  hash: string;
  /** The verity-sig JSON, NUL-padded (the slot's signature partition). */
  sig: string;
  sizeBytes: number;
  sigBytes: number;
  verity: VerityResult;
}

/** Bytes of the regular files under `dir` (symlinks not followed). */
async function treeBytes(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) n += (await lstat(join(e.parentPath, e.name))).size;
  }
  return n;
}

/**
 * Steps `CoreOS tree`, `erofs coreos-a` and `verity coreos-a`. `label` is the slot's GPT name
 * (`name_version`), which also seeds the verity salt; `agentConfig` goes to /etc/milkyway/agent.json.
 */
export async function buildCoreos(
  ctx: BuildContext,
  trust: ImageTrust,
  o: { label: string; agentConfig: Record<string, unknown>; policy: CoreosPolicy },
): Promise<CoreosImage> {
  const { spec, progress } = ctx;
  progress.step('CoreOS tree');
  const tree = join(ctx.work, 'coreos');
  await buildCoreosTree(tree, spec, o.agentConfig);
  const fileContexts = await writeCoreosPolicy(tree, o.policy, ctx.work, spec.selinux);
  const treeSize = await treeBytes(tree);
  progress.bytes(treeSize, treeSize);

  progress.step('erofs coreos-a');
  const image = join(ctx.work, 'coreos.erofs');
  const hash = join(ctx.work, 'coreos.verity');
  await makeErofs(tree, image, {
    sourceDateEpoch: ctx.epoch,
    rootOwner: true,
    uuid: ctx.uuid('coreos-erofs'),
    // security.selinux on every inode, from the policy's own file contexts: the labels are
    // under dm-verity with the code (doc/selinux.md).
    fileContexts,
  });
  await rm(tree, { recursive: true, force: true });
  const sizeBytes = await ctx.written(image);

  progress.step('verity coreos-a');
  const verity = await formatVerity(image, {
    hashPath: hash,
    seed: ctx.seed,
    label: o.label,
    ...ctx.hashing,
  });
  const sig = join(ctx.work, 'coreos.verity-sig');
  const sigData = encodeVeritySig({
    payload: {
      rootHash: verity.rootHash,
      name: spec.name,
      version: spec.version,
      architecture: spec.architecture,
    },
    key: trust.keys.vendor.key,
    chain: trust.keys.vendor.chain,
    now: ctx.now,
  });
  await writeFile(sig, sigData);
  return { image, hash, sig, sizeBytes, sigBytes: sigData.length, verity };
}
