// `verifyLayer`: structure (readLayer), every signature through keys/ verifyEnvelope
// (chain to an anchor, CRLs, validity at `at`, role allowed to sign layers), the manifest,
// the policy digest, the verity superblock and, unless `verity: false`, the full payload check.
import { createHash } from 'node:crypto';
import type { Progress } from '../common/index.ts';
import { type Certificate, type Crl, verifyEnvelope } from '../keys/index.ts';
import { type LayerFile, readLayer } from './layer-file.ts';
import { LayerError } from './layer-error.ts';
import { layerEnvelope } from './layer-signature.ts';
import type { LayerManifest } from './manifest.ts';
import { checkPayload, checkVeritySuperblock } from './payload-verity.ts';

export interface VerifyLayerOptions {
  anchors: readonly Certificate[];
  crls?: readonly Crl[];
  at?: Date;
  /** Full payload digest + hash tree check (default true). False: the kernel's dm-verity checks the data lazily. */
  verity?: boolean;
  progress?: Progress;
  /** Follow a symlink at `path` (default true; the agent refuses symlinked layer files). */
  followSymlinks?: boolean;
}

export interface VerifiedLayer {
  manifest: LayerManifest;
  /** Leaf certificate of each signature, in member order. */
  signers: Certificate[];
  /** Byte offset of payload.erofs data in the .mwl (multiple of 4096). */
  payloadOffset: number;
  payloadSize: number;
  /** Byte offset of payload.verity (superblock first) in the .mwl (multiple of 512). */
  verityOffset: number;
  veritySize: number;
  path: string;
  /** The SELinux module (policy.cil), its digest checked against the manifest's. */
  policy: Uint8Array | undefined;
}

/** The checks that need trust, on an already parsed layer. */
export async function verifyLayerFile(layer: LayerFile, o: VerifyLayerOptions): Promise<VerifiedLayer> {
  if (o.anchors.length === 0)
    throw new LayerError('E_NO_TRUST_ANCHOR', 'Verifying a layer needs at least one trust anchor');
  const { signers } = verifyEnvelope(layerEnvelope(layer.manifestJson, layer.signatures), {
    type: 'layer',
    anchors: o.anchors,
    crls: o.crls,
    at: o.at,
  });
  if (layer.policy !== undefined) {
    const d = createHash('sha256').update(layer.policy).digest('hex');
    if (d !== layer.manifest.policy?.sha256) {
      throw new LayerError('E_POLICY_DIGEST', `${layer.path}: policy.cil does not match the signed SHA-256`, {
        path: layer.path,
        details: { member: 'policy.cil' },
      });
    }
  }
  if (o.verity === false) await checkVeritySuperblock(layer);
  else await checkPayload(layer, o.progress);
  return {
    manifest: layer.manifest,
    signers,
    payloadOffset: layer.payloadOffset,
    payloadSize: layer.payloadSize,
    verityOffset: layer.verityOffset,
    veritySize: layer.veritySize,
    path: layer.path,
    policy: layer.policy,
  };
}

export async function verifyLayer(path: string, o: VerifyLayerOptions): Promise<VerifiedLayer> {
  return verifyLayerFile(await readLayer(path, { followSymlinks: o.followSymlinks !== false }), o);
}
