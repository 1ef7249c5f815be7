// `signLayer`: adds a countersignature (e.g. a user over a vendor layer). Only the
// signature members change; payload and hash tree keep their offsets.
import { copyFile, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { type Certificate, canonicalJson, type SigningKey } from '../keys/index.ts';
import { MAX_SIGNATURES, readLayer } from './layer-file.ts';
import { LayerError } from './layer-error.ts';
import { signManifest } from './layer-signature.ts';
import { BLOCK, encodeHeader, pad512 } from './mwl-tar.ts';

export interface SignLayerOptions {
  key: SigningKey;
  chain: readonly Certificate[];
  /** Output file; default: replace `path` atomically. */
  out?: string;
  now?: Date;
  hedged?: boolean;
}

export async function signLayer(
  path: string,
  o: SignLayerOptions,
): Promise<{ path: string; signatures: number }> {
  const layer = await readLayer(path);
  if (layer.signatures.length >= MAX_SIGNATURES) {
    throw new LayerError('E_LAYER_MEMBER_EXTRA', `${path} already has ${MAX_SIGNATURES} signatures`, {
      path,
    });
  }
  const leaf = o.chain[0];
  if (leaf !== undefined && layer.signatures.some((s) => s.signer === leaf.fingerprint)) {
    throw new LayerError('E_ALREADY_SIGNED', `${path} is already signed by ${leaf.subject}`, { path });
  }
  const sig = canonicalJson(
    signManifest(layer.manifestJson, {
      key: o.key,
      chain: o.chain,
      now: o.now ?? new Date(),
      hedged: o.hedged === true,
    }),
  );
  const out = o.out ?? path;
  const tmp = join(dirname(out), `.${basename(out)}.tmp-${process.pid}-${Date.now()}`);
  let ok = false;
  try {
    await copyFile(path, tmp);
    const fh = await open(tmp, 'r+');
    try {
      await fh.truncate(layer.end);
      const name = `signature.${layer.signatures.length + 1}.json`;
      const mtime = Math.floor(Date.parse(layer.manifest.created) / 1000);
      const tail = Buffer.concat([
        encodeHeader(name, sig.length, mtime),
        sig,
        Buffer.alloc(pad512(sig.length) - sig.length),
        Buffer.alloc(2 * BLOCK),
      ]);
      await fh.write(tail, 0, tail.length, layer.end);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, out);
    ok = true;
  } finally {
    if (!ok) await rm(tmp, { force: true });
  }
  return { path: out, signatures: layer.signatures.length + 1 };
}
