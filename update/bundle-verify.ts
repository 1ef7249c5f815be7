// `verifyBundle`: every check an update bundle must pass before one byte of it is written to
// a slot (doc/update-bundle.md, "Verification"), cheapest trust decision first: the vendor's
// `update` signature, then what the machine allows (architecture, name, a newer version, the
// rollback floor), then each member's digest, the full dm-verity check of the erofs against
// the signed root hash, the CoreOS verity signature inside, and the slot's stage 2 as stage 1
// will check it (bootchain/verifyStage2) naming the same CoreOS, version and rollback index.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { alignUp, BootchainError, pinVendorKey, verifyStage2 } from '../bootchain/index.ts';
import { isFormatError, verifyVerity } from '../formats/index.ts';
import { type Certificate, type Crl, KeysError, verifyEnvelope } from '../keys/index.ts';
import { type BundleLayout, readBundleHead, readBundleLayout } from './bundle-file.ts';
import {
  BUNDLE_MEMBERS,
  type BundleManifest,
  bundleManifestFormat,
  compareVersions,
} from './bundle-manifest.ts';
import { UpdateError } from './update-error.ts';

/** What the machine installing the bundle allows; absent keys are not checked. */
export interface BundlePolicy {
  architecture?: string;
  /** The running CoreOS: the bundle must carry the same name and a newer version. */
  running?: { name: string; version: string };
  /** The stored rollback floor: the bundle's index must be at least this. */
  rollbackFloor?: number;
  /**
   * Asked when the bundle is not newer than `running`: true lets it through (a user-signed
   * downgrade permit for it, update/downgrade-permit.ts, which throws when the permit is bad).
   */
  permitDowngrade?: (m: BundleManifest) => boolean;
}

export interface VerifiedBundle {
  manifest: BundleManifest;
  signer: Certificate;
  layout: BundleLayout;
}

const SIG_CODES = new Set(['E_ENVELOPE_MALFORMED', 'E_ENVELOPE_NOT_CANONICAL', 'E_ENVELOPE_TYPE']);

/** The vendor's `update` envelope: its signer and the manifest it signs. */
function checkEnvelope(
  envelope: Uint8Array,
  o: { anchors: readonly Certificate[]; crls?: readonly Crl[]; at?: Date },
): { manifest: BundleManifest; signer: Certificate } {
  let r: ReturnType<typeof verifyEnvelope>;
  try {
    r = verifyEnvelope(envelope, {
      type: 'update',
      anchors: o.anchors,
      crls: o.crls,
      at: o.at,
    });
  } catch (e) {
    if (!(e instanceof KeysError)) throw e;
    const code =
      e.code === 'E_ROLE_MAY_NOT_SIGN'
        ? 'E_BUNDLE_ROLE'
        : SIG_CODES.has(e.code)
          ? 'E_BUNDLE_MALFORMED'
          : 'E_BUNDLE_SIGNATURE';
    throw new UpdateError(code, `Update bundle refused: ${e.code}: ${e.message}`, {
      cause: e,
      details: { keysCode: e.code },
    });
  }
  return { manifest: bundleManifestFormat.parse(r.payload, 'bundle.json'), signer: r.signer };
}

/** Refuses a bundle the machine must not install, whatever its signature says. */
export function checkPolicy(m: BundleManifest, p: BundlePolicy): void {
  if (p.architecture !== undefined && m.architecture !== p.architecture)
    throw new UpdateError(
      'E_BUNDLE_ARCH',
      `Update bundle is for ${m.architecture}; this machine is ${p.architecture}`,
    );
  if (p.running !== undefined) {
    if (m.name !== p.running.name)
      throw new UpdateError(
        'E_BUNDLE_NAME',
        `Update bundle carries ${m.name}; this machine runs ${p.running.name}`,
      );
    if (compareVersions(m.version, p.running.version) <= 0 && p.permitDowngrade?.(m) !== true)
      throw new UpdateError(
        'E_BUNDLE_DOWNGRADE',
        `Update bundle version ${m.version} is not newer than the running ${p.running.version}`,
        { details: { version: m.version, running: p.running.version } },
      );
  }
  if (p.rollbackFloor !== undefined && m.rollbackIndex < p.rollbackFloor)
    throw new UpdateError(
      'E_BUNDLE_ROLLBACK',
      `Update bundle rollback index ${m.rollbackIndex} is below this machine's floor ${p.rollbackFloor}`,
      { details: { rollbackIndex: m.rollbackIndex, floor: p.rollbackFloor } },
    );
}

async function sha256Range(path: string, offset: number, size: number): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path, { start: offset, end: offset + size - 1 }))
    h.update(c as Buffer);
  return h.digest('hex');
}

/** The CoreOS verity signature (the disk's `.verity-sig` JSON) must name the bundle's root hash. */
function checkCoreosSig(
  bytes: Uint8Array,
  m: BundleManifest,
  o: { anchors: readonly Certificate[]; crls?: readonly Crl[]; at?: Date },
): void {
  const fail = (why: string, cause?: unknown) =>
    new UpdateError('E_BUNDLE_COREOS_SIG', `CoreOS verity signature in the bundle: ${why}`, {
      ...(cause === undefined ? {} : { cause }),
    });
  const end = bytes.indexOf(0);
  let j: { rootHash?: unknown; signature?: unknown };
  try {
    j = JSON.parse(new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end)));
  } catch (e) {
    throw fail('not JSON', e);
  }
  if (j.rootHash !== m.coreos.rootHash || typeof j.signature !== 'string')
    throw fail(`names root hash ${String(j.rootHash)}, the bundle ${m.coreos.rootHash}`);
  let payload: { rootHash?: unknown; name?: unknown; version?: unknown; architecture?: unknown };
  try {
    payload = verifyEnvelope(new Uint8Array(Buffer.from(j.signature, 'base64')), {
      type: 'coreos',
      anchors: o.anchors,
      crls: o.crls,
      at: o.at,
    }).payload as typeof payload;
  } catch (e) {
    throw fail((e as Error).message, e);
  }
  if (
    payload.rootHash !== m.coreos.rootHash ||
    payload.name !== m.name ||
    payload.version !== m.version ||
    payload.architecture !== m.architecture
  )
    throw fail(
      `signs ${String(payload.name)} ${String(payload.version)} (${String(payload.architecture)}), the bundle is ${m.name} ${m.version} (${m.architecture})`,
    );
}

async function readMember(path: string, m: BundleLayout['members'][number]): Promise<Uint8Array> {
  const bytes = new Uint8Array(m.size);
  const fh = await open(path, 'r');
  try {
    await fh.read(bytes, 0, m.size, m.offset);
  } finally {
    await fh.close();
  }
  return bytes;
}

/**
 * The slot's stage 2, checked as stage 1 will check it — the descriptor's ML-DSA signature
 * (by the bundle's own vendor signer: one key vouches for both), layout, kernel and initramfs
 * digests — and bound to the manifest: the same CoreOS root hash, name, version and rollback
 * index, and no byte after the initramfs but its zero padding.
 */
function checkStage2(
  image: Uint8Array,
  m: BundleManifest,
  signer: Certificate,
  o: { anchors: readonly Certificate[]; crls?: readonly Crl[]; at?: Date },
): void {
  const fail = (why: string, cause?: unknown) =>
    new UpdateError('E_BUNDLE_STAGE2', `Stage 2 in the bundle: ${why}`, {
      ...(cause === undefined ? {} : { cause }),
      ...(cause instanceof BootchainError ? { details: { bootchainCode: cause.code } } : {}),
    });
  let d: ReturnType<typeof verifyStage2>['descriptor'];
  try {
    const pinned = [
      pinVendorKey(signer, { anchors: o.anchors, crls: o.crls ?? [], ...(o.at ? { at: o.at } : {}) }),
    ];
    d = verifyStage2(image, { pinned, rollbackFloor: 0n, at: 'stage2' }).descriptor;
  } catch (e) {
    if (!(e instanceof BootchainError)) throw e;
    throw fail(`${e.code}: ${e.message}`, e);
  }
  const end = d.initrd.offset + d.initrd.size;
  if (image.length !== alignUp(end) || image.subarray(end).some((b) => b !== 0))
    throw fail(
      `${image.length} bytes, the descriptor's parts end at ${end} (only zero padding to 4096 may follow)`,
    );
  const got = `${d.name} ${d.version}, rollback index ${d.rollbackIndex}, root hash ${d.rootHash}`;
  const want = `${m.name} ${m.version}, rollback index ${m.rollbackIndex}, root hash ${m.coreos.rootHash}`;
  if (got !== want) throw fail(`its descriptor names ${got}; the bundle is ${want}`);
}

/**
 * The checks the first piece of a bundle allows (steps 1–3 of `verifyBundle` on its first
 * bytes): bundle.json's shape, the vendor's `update` signature and the machine's policy. A peer
 * runs them on the first `coreos.chunk`, so a replayed, older or foreign bundle is refused
 * before the rest of it travels. Null when `head` is too short to hold bundle.json; passing
 * says nothing of the rest, which `verifyBundle` checks once it is all there.
 */
export function verifyBundleHead(
  head: Uint8Array,
  o: { anchors: readonly Certificate[]; crls?: readonly Crl[]; at?: Date; policy?: BundlePolicy },
): { manifest: BundleManifest; signer: Certificate } | null {
  const envelope = readBundleHead(head);
  if (envelope === null) return null;
  const r = checkEnvelope(envelope, o);
  checkPolicy(r.manifest, o.policy ?? {});
  return r;
}

/**
 * Verifies `path` completely, or throws the UpdateError naming the first check that failed.
 * `onProgress` is told the bytes checked so far (digests, then the verity read).
 */
export async function verifyBundle(
  path: string,
  o: {
    anchors: readonly Certificate[];
    crls?: readonly Crl[];
    at?: Date;
    policy?: BundlePolicy;
    onProgress?: (done: number, total: number) => void;
  },
): Promise<VerifiedBundle> {
  const layout = readBundleLayout(path);
  const { manifest, signer } = checkEnvelope(layout.envelope, o);
  checkPolicy(manifest, o.policy ?? {});
  const total = layout.members.reduce((n, m) => n + m.size, 0) + manifest.coreos.erofs.size;
  let done = 0;
  for (const [i, spec] of BUNDLE_MEMBERS.entries()) {
    const member = layout.members[i] as BundleLayout['members'][number];
    const want = spec.digest(manifest);
    const got = member.size === want.size ? await sha256Range(path, member.offset, member.size) : '';
    if (got !== want.sha256)
      throw new UpdateError(
        'E_BUNDLE_DIGEST',
        `Update bundle member ${spec.name} (${member.size} bytes) does not match the signed ${want.size} bytes / sha256 ${want.sha256}`,
        { details: { member: spec.name } },
      );
    done += member.size;
    o.onProgress?.(done, total);
  }
  const [erofs, verity, sig, stage2] = layout.members;
  try {
    await verifyVerity(path, path, manifest.coreos.rootHash, {
      dataOffset: erofs.offset,
      hashOffset: verity.offset,
      onProgress: (n) => o.onProgress?.(done + n, total),
    });
  } catch (e) {
    if (!isFormatError(e)) throw e;
    throw new UpdateError('E_BUNDLE_VERITY', `CoreOS in the bundle fails its verity check: ${e.message}`, {
      cause: e,
      details: { ...(e.details ?? {}), formatCode: e.code },
    });
  }
  checkCoreosSig(await readMember(path, sig), manifest, o);
  checkStage2(await readMember(path, stage2), manifest, signer, o);
  return { manifest, signer, layout };
}
