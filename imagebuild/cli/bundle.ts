// `mway-image bundle create|verify|permit`: the vendor-signed A/B update bundle, and the
// user-signed permit to install one older than a machine runs (doc/update-bundle.md).
import { defineCommand } from 'citty';
import { commonArgs, createProgress, progressArgs, output, values } from '../../common/index.ts';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { type Certificate, type Crl, readCertificates, readCrls, serialize } from '../../keys/index.ts';
import {
  type BundlePolicy,
  MAX_PERMIT_DAYS,
  signDowngradePermit,
  type VerifiedBundle,
  verifyBundle,
} from '../../update/index.ts';
import { loadImageKeys } from '../dev-keys.ts';
import { bundleFromDisk } from '../bundle-from-disk.ts';
import { ImageError } from '../image-error.ts';

function summary(path: string, b: VerifiedBundle): Record<string, unknown> {
  return {
    bundle: path,
    name: b.manifest.name,
    version: b.manifest.version,
    rollbackIndex: b.manifest.rollbackIndex,
    architecture: b.manifest.architecture,
    rootHash: b.manifest.coreos.rootHash,
    coreosBytes: b.manifest.coreos.erofs.size,
    signer: { subject: b.signer.subject, role: b.signer.role, fingerprint: b.signer.fingerprint },
  };
}

const human = (s: Record<string, unknown>, what: string) => () =>
  [
    `${String(s.bundle)}: ${what}`,
    `  CoreOS ${String(s.name)} ${String(s.version)} (${String(s.architecture)}), rollback index ${String(s.rollbackIndex)}`,
    `  root hash ${String(s.rootHash)}`,
    `  signed by ${(s.signer as { subject: string }).subject} (${(s.signer as { role: string }).role})`,
  ].join('\n');

function whole(v: string | undefined, flag: string, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) > max)
    throw new ImageError('E_SPEC_INVALID', `--${flag} ${JSON.stringify(v)} is not a whole number 0 … ${max}`);
  return Number(v);
}

const create = defineCommand({
  meta: { name: 'create', description: "Make a vendor-signed update bundle from a built disk's CoreOS A" },
  args: {
    ...commonArgs,
    disk: { type: 'positional', required: true, description: 'Disk image built by mway-image build' },
    out: { type: 'string', alias: 'o', required: true, description: 'Bundle file to write (.mwu)' },
    keys: {
      type: 'string',
      required: true,
      description: 'Keys folder with vendor.key/.crt and vendor-root.crt',
    },
    'rollback-index': {
      type: 'string',
      description:
        "Rollback index (0 … 2^32−1; only rises); the one signed into the disk's stage 2 (bootchain.rollbackIndex) when not given, refused when it differs",
    },
  },
  async run({ args }) {
    const rollbackIndex = whole(args['rollback-index'], 'rollback-index', 0xffff_ffff);
    const r = await bundleFromDisk({
      disk: args.disk,
      out: args.out,
      keysDir: args.keys,
      ...(rollbackIndex === undefined ? {} : { rollbackIndex }),
    });
    const s = summary(args.out, r);
    output(args.json, s, human(s, 'written and verified'));
    return 0;
  },
});

const verify = defineCommand({
  meta: { name: 'verify', description: 'Check an update bundle: signature, digests, the full verity tree' },
  args: {
    ...commonArgs,
    ...progressArgs,
    bundle: { type: 'positional', required: true, description: 'Update bundle (.mwu)' },
    trust: { type: 'string', repeatable: true, description: 'Trust anchor (the vendor root), repeatable' },
    crl: { type: 'string', repeatable: true, description: 'CRL file, repeatable' },
    architecture: { type: 'string', description: 'Refuse a bundle for another architecture' },
    running: {
      type: 'string',
      description: 'NAME_VERSION running now: refuse another name or an older version',
    },
    'rollback-floor': { type: 'string', description: 'Refuse a rollback index below this' },
  },
  async run({ args }) {
    const trust = values(args.trust);
    if (trust.length === 0)
      throw new ImageError(
        'E_VERIFY_NO_TRUST',
        'mway-image bundle verify needs at least one --trust ANCHOR certificate',
      );
    const anchors: Certificate[] = [];
    for (const t of trust) anchors.push(...(await readCertificates(t)));
    const crls: Crl[] = [];
    for (const c of values(args.crl)) crls.push(...(await readCrls(c)));
    const policy: BundlePolicy = {};
    if (args.architecture !== undefined) policy.architecture = args.architecture;
    if (args.running !== undefined) {
      const m = /^([^_]+)_([^_]+)$/.exec(args.running);
      if (m === null)
        throw new ImageError(
          'E_SPEC_INVALID',
          `--running ${JSON.stringify(args.running)} is not NAME_VERSION`,
        );
      policy.running = { name: m[1] as string, version: m[2] as string };
    }
    const floor = whole(args['rollback-floor'], 'rollback-floor', 0xffff_ffff);
    if (floor !== undefined) policy.rollbackFloor = floor;
    const progress = createProgress({ json: args.json, quiet: args.quiet });
    progress.step('verify bundle');
    const r = await verifyBundle(args.bundle, {
      anchors,
      crls,
      policy,
      onProgress: (d, t) => progress.bytes(d, t),
    });
    progress.done();
    const s = summary(args.bundle, r);
    output(args.json, s, human(s, 'verified'));
    return 0;
  },
});

const permit = defineCommand({
  meta: {
    name: 'permit',
    description:
      'Sign, with the user key, a permit to install this bundle on machines running a newer version',
  },
  args: {
    ...commonArgs,
    bundle: { type: 'positional', required: true, description: 'Update bundle (.mwu) the permit is for' },
    out: { type: 'string', alias: 'o', required: true, description: 'Permit file to write (.json)' },
    keys: {
      type: 'string',
      required: true,
      description: 'Keys folder with user.key/.crt (the signer) and vendor-root.crt (to check the bundle)',
    },
    days: { type: 'string', description: `Days the permit is valid (1 … ${MAX_PERMIT_DAYS}, default 7)` },
  },
  async run({ args }) {
    const days = whole(args.days ?? '7', 'days', MAX_PERMIT_DAYS);
    if (days === undefined || days < 1)
      throw new ImageError('E_SPEC_INVALID', `--days must be 1 … ${MAX_PERMIT_DAYS}`);
    const keys = await loadImageKeys(args.keys, { generate: false });
    // The permit names a bundle that verifies: a user cannot permit what no machine would install.
    const b = await verifyBundle(args.bundle, { anchors: [keys.vendorRoot] });
    const h = createHash('sha256');
    for await (const c of createReadStream(args.bundle)) h.update(c as Buffer);
    const bundleSha256 = h.digest('hex');
    const env = signDowngradePermit({
      manifest: b.manifest,
      bundleSha256,
      days,
      key: keys.user.key,
      chain: keys.user.chain,
    });
    await writeFile(args.out, serialize(env));
    const s = {
      permit: args.out,
      bundle: args.bundle,
      name: b.manifest.name,
      version: b.manifest.version,
      bundleSha256,
      expiresAt: (env.payload as { expiresAt: string }).expiresAt,
    };
    output(
      args.json,
      s,
      () =>
        `${args.out}: downgrade permit for ${s.name} ${s.version} (bundle ${bundleSha256.slice(0, 12)}), valid until ${s.expiresAt}`,
    );
    return 0;
  },
});

export default defineCommand({
  subCommands: { create, verify, permit },
});
