// `createBundle`: signs a manifest over the three CoreOS files and the slot's stage 2 with the vendor key and writes
// the bundle (doc/update-bundle.md). The manifest is computed from the files, never taken on
// trust, and the written bundle is verified before it is kept: a bundle that would be refused
// is never handed out. The caller names the root hash (from the slot's GPT GUIDs or from
// formatVerity); the self-check proves the tree matches it.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { type Certificate, type SigningKey, signEnvelope } from '../keys/index.ts';
import { writeBundle } from './bundle-file.ts';
import { BUNDLE_FORMAT, type BundleManifest, bundleManifestFormat } from './bundle-manifest.ts';
import { type VerifiedBundle, verifyBundle } from './bundle-verify.ts';

async function digest(path: string): Promise<{ size: number; sha256: string }> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return { size: (await stat(path)).size, sha256: h.digest('hex') };
}

export interface CreateBundleOptions {
  out: string;
  name: string;
  version: string;
  rollbackIndex: number;
  architecture: string;
  rootHash: string;
  /**
   * coreos.erofs, its verity hash area, its verity-sig partition bytes, and the stage-2 image
   * (signed by the same vendor key, naming this root hash, version and rollback index).
   */
  files: { erofs: string; verity: string; veritySig: string; stage2: string };
  key: SigningKey;
  /** The vendor certificate first, then up to its root. */
  chain: readonly Certificate[];
  /** The anchors the self-check verifies under (the vendor root). */
  anchors: readonly Certificate[];
  now: Date;
}

export async function createBundle(o: CreateBundleOptions): Promise<VerifiedBundle> {
  const manifest: BundleManifest = bundleManifestFormat.parse({
    format: BUNDLE_FORMAT,
    name: o.name,
    version: o.version,
    rollbackIndex: o.rollbackIndex,
    architecture: o.architecture,
    created: new Date(Math.floor(o.now.getTime() / 1000) * 1000).toISOString().replace('.000Z', 'Z'),
    coreos: {
      rootHash: o.rootHash,
      erofs: await digest(o.files.erofs),
      verity: await digest(o.files.verity),
      veritySig: await digest(o.files.veritySig),
    },
    stage2: await digest(o.files.stage2),
  });
  const envelope = signEnvelope({
    type: 'update',
    payload: manifest,
    key: o.key,
    chain: o.chain,
    now: o.now,
  });
  const tmp = `${o.out}.tmp-${process.pid}`;
  await rm(tmp, { force: true });
  try {
    await writeBundle(tmp, {
      envelope,
      files: [o.files.erofs, o.files.verity, o.files.veritySig, o.files.stage2],
      mtime: Math.floor(o.now.getTime() / 1000),
    });
    const verified = await verifyBundle(tmp, { anchors: o.anchors, at: o.now });
    await rename(tmp, o.out);
    return verified;
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
