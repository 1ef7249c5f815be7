// The update bundle's manifest (doc/update-bundle.md, "Manifest"): the payload of the
// vendor-signed `update` envelope, defined once here as a Valibot schema — its type, its
// validator with key paths and doc/update-bundle.schema.json all come from it. Format 2 adds
// the slot's stage 2 (the boot chain's boot-a/boot-b image): without it a machine booting
// through stage 1 could write a CoreOS slot that stage 1 never boots.
import { schema } from '../common/index.ts';
import { UpdateError } from './update-error.ts';

const { v, object, text, int, defineFormat } = schema;

export const BUNDLE_FORMAT = 2;
/** The OS name and version rules of the image spec (imagebuild/image-spec.ts). */
export const OS_NAME = /^[a-z][a-z0-9-]{0,23}$/;
export const OS_VERSION = /^[0-9][0-9A-Za-z.+~-]{0,15}$/;
const HEX64 = /^[0-9a-f]{64}$/;
/** CoreOS is at most 16 GiB: the bound that keeps every offset a safe integer. */
export const MAX_COREOS_BYTES = 16 * 1024 ** 3;
/** A stage-2 image is at most its header, signature, a 64 MiB kernel and a 256 MiB initramfs. */
export const MAX_STAGE2_BYTES = 12288 + (64 << 20) + (256 << 20) + 4096;

const member = (what: string, max: number) =>
  object({
    size: int(1, max, `the ${what} size in bytes`),
    sha256: text({ pattern: HEX64, hint: 'must be 64 lower-case hex digits' }),
  });

const manifestSchema = object({
  format: v.literal(BUNDLE_FORMAT, (i) => `format ${schema.shown(i.input)} is not ${BUNDLE_FORMAT}`),
  name: text({ pattern: OS_NAME, hint: 'must be lower-case letters, digits and -, at most 24' }),
  version: text({ pattern: OS_VERSION, hint: 'must start with a digit, at most 16 characters' }),
  /** Only rises: a machine refuses a bundle below the floor it stored when it last marked good. */
  rollbackIndex: int(0, 0xffff_ffff, 'a rollback index'),
  architecture: v.picklist(['x86_64', 'aarch64'], (i) => `${schema.shown(i.input)} is not x86_64 or aarch64`),
  created: text({ pattern: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$/, hint: 'must be ISO 8601 UTC' }),
  coreos: object({
    rootHash: text({ pattern: HEX64, hint: 'must be 64 lower-case hex digits' }),
    erofs: member('erofs', MAX_COREOS_BYTES),
    verity: member('verity tree', MAX_COREOS_BYTES),
    veritySig: member('verity signature', 1024 * 1024),
  }),
  /** The boot partition image for the slot (doc/stage2-format.md): descriptor, signature, kernel, initramfs. */
  stage2: member('stage-2 image', MAX_STAGE2_BYTES),
});

export const bundleManifestFormat = defineFormat({
  name: 'update-bundle',
  title: 'MilkyWay update bundle manifest (the payload of the vendor-signed update envelope)',
  schema: manifestSchema,
  error: (issue, source) =>
    new UpdateError(
      'E_BUNDLE_MALFORMED',
      `Bad update manifest${source === undefined ? '' : ` in ${source}`}: ${issue.keyPath}: ${issue.problem}`,
      { details: { field: issue.keyPath } },
    ),
});

export type BundleManifest = schema.Output<typeof manifestSchema>;

type MemberDigest = BundleManifest['stage2'];

/** The four payload members in their bundle order, with the manifest entry that binds each. */
export const BUNDLE_MEMBERS: readonly { name: string; digest: (m: BundleManifest) => MemberDigest }[] = [
  { name: 'coreos.erofs', digest: (m) => m.coreos.erofs },
  { name: 'coreos.verity', digest: (m) => m.coreos.verity },
  { name: 'coreos.verity-sig', digest: (m) => m.coreos.veritySig },
  { name: 'stage2', digest: (m) => m.stage2 },
];
export const MANIFEST_MEMBER = 'bundle.json';

/**
 * Orders two OS versions like systemd's `compare-versions` (UAPI version format): runs of
 * digits compare as numbers, other runs as text, `~` sorts before everything (a pre-release).
 * Negative when `a` < `b`.
 */
export function compareVersions(a: string, b: string): number {
  const parts = (s: string) => s.match(/~|[0-9]+|[A-Za-z]+|[^0-9A-Za-z~]+/g) ?? [];
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; ; i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined && y === undefined) return 0;
    if (x === '~' || y === '~') {
      if (x !== y) return x === '~' ? -1 : 1;
      continue;
    }
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    // Separators ('.', '-', '+') only split; they do not order.
    if (/^[^0-9A-Za-z]/.test(x) && /^[^0-9A-Za-z]/.test(y)) continue;
    const nx = /^[0-9]/.test(x);
    const ny = /^[0-9]/.test(y);
    if (nx && ny) {
      const d = BigInt(x) - BigInt(y);
      if (d !== 0n) return d < 0n ? -1 : 1;
    } else if (nx !== ny) return nx ? 1 : -1;
    else if (x !== y) return x < y ? -1 : 1;
  }
}
