// The downgrade permit (doc/update-bundle.md, "Downgrade permit"): a machine refuses a bundle
// whose version is not newer than the one it runs (E_BUNDLE_DOWNGRADE) — unless the user, who
// owns the machines, signs a permit for exactly that bundle: an envelope of type `downgrade`
// (only the `user` role may sign it, keys/role-policy.ts) binding the bundle file's SHA-256,
// its OS name and version, with an expiry. It relaxes only the version rule: the rollback floor
// still holds (Android AVB's rule), so a permit cannot bring back a release the fleet left
// for a security reason — that needs a new bundle with a rollback index at the floor.
import {
  type Certificate,
  type Crl,
  type Envelope,
  KeysError,
  type SigningKey,
  signEnvelope,
  verifyEnvelope,
} from '../keys/index.ts';
import { schema } from '../common/index.ts';
import type { BundleManifest } from './bundle-manifest.ts';
import { UpdateError } from './update-error.ts';

const { v, object, text } = schema;

/** The longest a permit may be valid: it is for one planned downgrade, not a standing licence. */
export const MAX_PERMIT_DAYS = 30;

const permitSchema = object({
  v: v.literal(1),
  name: text({ max: 64 }),
  version: text({ max: 64 }),
  bundleSha256: text({ pattern: /^[0-9a-f]{64}$/, hint: 'is not 64 lower-case hex digits' }),
  expiresAt: text({ max: 40 }),
});
export type DowngradePermit = schema.Output<typeof permitSchema>;

/** Signs a permit for the bundle with this manifest and file digest, valid for `days`. */
export function signDowngradePermit(o: {
  manifest: Pick<BundleManifest, 'name' | 'version'>;
  bundleSha256: string;
  days: number;
  key: SigningKey;
  chain: readonly Certificate[];
  now?: Date;
}): Envelope {
  if (!(Number.isInteger(o.days) && o.days >= 1 && o.days <= MAX_PERMIT_DAYS))
    throw new RangeError(`A downgrade permit is valid 1..${MAX_PERMIT_DAYS} days, not ${o.days}`);
  const now = o.now ?? new Date();
  const payload: DowngradePermit = {
    v: 1,
    name: o.manifest.name,
    version: o.manifest.version,
    bundleSha256: o.bundleSha256,
    expiresAt: new Date(now.getTime() + o.days * 86_400_000).toISOString(),
  };
  return signEnvelope({ type: 'downgrade', payload, key: o.key, chain: [...o.chain] });
}

const refuse = (message: string, details?: Record<string, unknown>, cause?: unknown) =>
  new UpdateError('E_DOWNGRADE_PERMIT', message, {
    ...(details === undefined ? {} : { details }),
    ...(cause === undefined ? {} : { cause }),
  });

/**
 * Checks `permit` for the bundle with `manifest` and file digest `bundleSha256`: signed by a
 * user certificate under the anchors, not expired, naming exactly this bundle. Returns the
 * version it lets the machine install.
 */
export function verifyDowngradePermit(
  permit: unknown,
  o: {
    anchors: readonly Certificate[];
    crls?: readonly Crl[];
    manifest: Pick<BundleManifest, 'name' | 'version'>;
    bundleSha256: string;
    at?: Date;
  },
): string {
  let payload: unknown;
  try {
    payload = verifyEnvelope(permit as Envelope, {
      type: 'downgrade',
      anchors: o.anchors,
      crls: o.crls,
      at: o.at,
    }).payload;
  } catch (e) {
    if (!(e instanceof KeysError)) throw e;
    throw refuse(`Downgrade permit refused: ${e.code}: ${e.message}`, { keysCode: e.code }, e);
  }
  const r = schema.check(permitSchema, payload);
  if (!r.ok) throw refuse(`Downgrade permit refused: ${r.issue.keyPath}: ${r.issue.problem}`);
  const p = r.value;
  const expires = Date.parse(p.expiresAt);
  if (!Number.isFinite(expires) || expires <= (o.at ?? new Date()).getTime())
    throw refuse(`Downgrade permit refused: it expired at ${p.expiresAt}`);
  if (p.bundleSha256 !== o.bundleSha256 || p.name !== o.manifest.name || p.version !== o.manifest.version)
    throw refuse(
      `Downgrade permit refused: it is for ${p.name} ${p.version} (bundle ${p.bundleSha256.slice(0, 12)}), not ${o.manifest.name} ${o.manifest.version} (bundle ${o.bundleSha256.slice(0, 12)})`,
    );
  return p.version;
}
