// The trust an image carries: the signing keys the build uses, the anchors and CRLs the
// machine will trust, and the certificate partition that holds them — erofs of one file per
// anchor and CRL with its dm-verity tree appended, its root hash pinned on the UKI command
// line as `mway.certs` (doc/disk-layout.md "The certificate partition").
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { formatVerity, makeErofs, type VerityResult } from '../formats/index.ts';
import { type Certificate, type Crl, parseCertificates, parseCrl } from '../keys/index.ts';
import type { BuildContext } from './build-context.ts';
import { type ImageKeys, loadImageKeys } from './dev-keys.ts';

export interface ImageTrust {
  keys: ImageKeys;
  /** The folder the keys came from (the spec's, or `--keys`). */
  keysDir: string;
  /** The vendor and user roots plus the spec's extra anchors, one per fingerprint. */
  anchors: Certificate[];
  crls: { name: string; pem: string; crl: Crl }[];
}

/** Certificates and CRLs for the certificate partition, as files named by fingerprint. */
async function trustFiles(
  anchors: readonly Certificate[],
  extraAnchors: readonly string[],
  crlPaths: readonly string[],
): Promise<{ anchors: Certificate[]; crls: { name: string; pem: string; crl: Crl }[] }> {
  const all = [...anchors];
  for (const p of extraAnchors) all.push(...parseCertificates(await readFile(p)));
  const unique = new Map(all.map((c) => [c.fingerprint, c]));
  const crls = [];
  for (const p of crlPaths) {
    const bytes = await readFile(p);
    crls.push({
      name: basename(p).replace(/\.(pem|der|crl)$/, ''),
      pem: bytes.toString('latin1'),
      crl: parseCrl(bytes),
    });
  }
  return { anchors: [...unique.values()], crls };
}

/**
 * Step `keys`: the keys folder (`keysDir` when given, else the spec's, relative to the output
 * folder), made as a development PKI when the spec says `generate` and it is missing.
 */
export async function loadTrust(
  ctx: BuildContext,
  o: { keysDir?: string; outDir: string },
): Promise<ImageTrust> {
  const { spec } = ctx;
  ctx.progress.step('keys');
  const keysDir =
    o.keysDir !== undefined
      ? resolve(o.keysDir)
      : isAbsolute(spec.keys.dir)
        ? spec.keys.dir
        : join(o.outDir, spec.keys.dir);
  const keys = await loadImageKeys(keysDir, { generate: o.keysDir === undefined && spec.keys.generate });
  const trust = await trustFiles([keys.vendorRoot, keys.userRoot], spec.trust.anchors, spec.trust.crls);
  return { keys, keysDir, ...trust };
}

export interface CertificatesImage {
  /** erofs with its verity tree appended at `verity.hashOffset`. */
  image: string;
  verity: VerityResult;
}

/** Steps `erofs certificates` and `verity certificates`: the certificate partition's image. */
export async function buildCertificates(
  ctx: BuildContext,
  trust: ImageTrust,
  label: string,
): Promise<CertificatesImage> {
  ctx.progress.step('erofs certificates');
  const dir = join(ctx.work, 'certs');
  await mkdir(dir);
  const names = new Map([
    [trust.keys.vendorRoot.fingerprint, 'vendor-root'],
    [trust.keys.userRoot.fingerprint, 'user-root'],
  ]);
  for (const c of trust.anchors)
    await writeFile(join(dir, `${names.get(c.fingerprint) ?? c.fingerprint.slice(0, 16)}.crt`), c.pem);
  for (const c of trust.crls) await writeFile(join(dir, `${c.name}.crl`), c.pem);
  const image = join(ctx.work, 'certificates.img');
  await makeErofs(dir, image, {
    sourceDateEpoch: ctx.epoch,
    rootOwner: true,
    uuid: ctx.uuid('certificates'),
  });
  await ctx.written(image);
  ctx.progress.step('verity certificates');
  const verity = await formatVerity(image, { seed: ctx.seed, label, ...ctx.hashing });
  return { image, verity };
}
