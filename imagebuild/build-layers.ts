// The preinstalled layers: each spec entry is a `.mwl` or a layer folder packed and signed
// with the user key here; every one must verify under the image's own anchors (the agent
// would refuse it at boot otherwise), and lands as `<name>.mwl` in the layers partition.
import { copyFile, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { packLayer, verifyLayer } from '../layers/index.ts';
import type { BuildContext } from './build-context.ts';
import type { ImageTrust } from './build-trust.ts';
import { ImageError } from './image-error.ts';

export interface PreinstalledLayer {
  name: string;
  version: string;
  signers: string[];
  file: string;
}

export interface LayersFolder {
  /** The folder the layers partition is made from. */
  dir: string;
  /** Bytes of the `.mwl` files in it. */
  bytes: number;
  layers: PreinstalledLayer[];
  /** Each layer's name and SELinux module (policy.cil), for the policy CoreOS carries. */
  policies: { name: string; module: Uint8Array | undefined }[];
}

/** Step `layers`: packs, verifies and gathers the spec's layers into one folder. */
export async function gatherLayers(ctx: BuildContext, trust: ImageTrust): Promise<LayersFolder> {
  ctx.progress.step('layers');
  const dir = join(ctx.work, 'layers');
  await mkdir(dir);
  const crls = trust.crls.map((c) => c.crl);
  const layers: PreinstalledLayer[] = [];
  const policies: LayersFolder['policies'] = [];
  let bytes = 0;
  for (const [i, src] of ctx.spec.layers.entries()) {
    let mwl = src;
    if (!src.endsWith('.mwl')) {
      mwl = join(ctx.work, `layer-${i}.mwl`);
      await packLayer({
        dir: src,
        key: trust.keys.user.key,
        chain: trust.keys.user.chain,
        out: mwl,
        sourceDateEpoch: ctx.epoch,
      });
    }
    // The agent would refuse what does not verify here; fail the build instead.
    const v = await verifyLayer(mwl, { anchors: trust.anchors, crls });
    const file = `${v.manifest.name}.mwl`;
    if (layers.some((l) => l.file === file))
      throw new ImageError('E_SPEC_INVALID', `Layer ${v.manifest.name} is listed twice`, {
        details: { field: `layers[${i}]` },
      });
    await copyFile(mwl, join(dir, file));
    bytes += (await stat(join(dir, file))).size;
    ctx.progress.bytes(bytes, bytes);
    layers.push({
      name: v.manifest.name,
      version: v.manifest.version,
      signers: v.signers.map((s) => s.subject),
      file,
    });
    policies.push({ name: v.manifest.name, module: v.policy });
  }
  return { dir, bytes, layers, policies };
}
