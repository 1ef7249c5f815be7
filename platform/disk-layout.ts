// The MilkyWayLinux disk layout (doc/disk-layout.md) as one table, one row per partition in
// disk order. Everything else is derived from it (layout-derived.ts): the GPT entries
// `mway-image build` writes, the roles `mway-image inspect` reports and the checks `verify`
// makes, the mounts in the agent config CoreOS carries, the agent's default paths, the
// spec's default sizes and the table in doc/disk-layout.md (a test renders it from here).
// Data and pure functions only.
//
// A new partition is a new row. The A/B boot partitions `boot-a` / `boot-b` (stage 2 of the
// boot chain, doc/stage2-format.md) carry ChromeOS priority/tries/successful bits that stage 1
// and updates change at run time (`slotBits`).
import { DPS, type PartitionAttributes } from '../formats/index.ts';
import { MILKYWAY } from './partition-types.ts';

export type PartitionRole =
  | 'esp'
  | 'boot-a'
  | 'boot-b'
  | 'coreos-a'
  | 'coreos-a-verity'
  | 'coreos-a-verity-sig'
  | 'coreos-b'
  | 'coreos-b-verity'
  | 'coreos-b-verity-sig'
  | 'certificates'
  | 'secure-config'
  | 'secure-dynamic-config'
  | 'dynamic-config'
  | 'layers'
  | 'data'
  | 'peer-identity';

/** The image spec's `partitions` keys (MiB each). */
export type PartitionSizeKey =
  | 'esp'
  | 'boot'
  | 'coreos'
  | 'certificates'
  | 'secureConfig'
  | 'secureDynamicConfig'
  | 'dynamicConfig'
  | 'layers'
  | 'data'
  | 'peerIdentity';

/**
 * How big a partition is. With a spec key, the spec's MiB (or `defaultMiB`); 0 MiB means
 * "what the content needs × headroom". `grow`: the content's size when it is bigger;
 * otherwise the size is exact and content that does not fit is an error.
 */
export interface PartitionSize {
  spec?: PartitionSizeKey;
  /** The spec's default, or the fixed size when there is no spec key. */
  defaultMiB: number;
  grow?: boolean;
  /** Room left beyond the content when the size is computed (CoreOS: 1.25, for updates). */
  headroom?: number;
}

export interface PartitionRow {
  role: PartitionRole;
  /**
   * GPT name. A string for a fixed partition (the agent finds it by PARTLABEL); for a CoreOS
   * slot the suffix after `NAME_VERSION` (`''`, `.verity`, `.verity-sig`), or EMPTY_SLOT.
   */
  label: string | { slotSuffix: '' | '.verity' | '.verity-sig' };
  type: string;
  /** How doc/disk-layout.md and `inspect` name the type. */
  typeName: string;
  /** The file system it holds; null for a verity hash area or signature. */
  filesystem: 'vfat' | 'erofs' | 'ext4' | 'stage2' | null;
  /**
   * GPT bits 48–56 are the boot slot's state (bootchain/slot.ts: priority, tries, successful),
   * written by stage 1 and by updates: the layout check ignores them, and an empty slot is fine.
   */
  slotBits?: true;
  /** dm-verity: the slot's data, its hash area, its signature, or a tree appended to the file system. */
  verity?: 'data' | 'hash' | 'sig' | 'appended';
  /** A/B slot the partition belongs to. */
  slot?: 'a' | 'b';
  /** GPT attribute bit 60 (DPS read-only); a mounted partition is also mounted `ro`. */
  readOnly: boolean;
  /** GPT attribute bits beyond read-only (none yet; the boot slots' priority bits go here). */
  gptAttributes?: Omit<PartitionAttributes, 'readOnly'>;
  /** Where CoreOS's agent mounts it; `options` without the ro/rw that `readOnly` decides. */
  mount?: { target: string; options: string };
  /**
   * SELinux: the type the agent mounts it with (`context=`), one label for every file, for the
   * partitions only the agent reads (doc/selinux.md). Without one, the file system's own
   * labels count (xattrs: CoreOS and the certificates set at build, data set by the agent).
   */
  selinuxType?: string;
  size: PartitionSize;
  /** Only on disks whose spec asks for it. */
  optional?: true;
  /**
   * What its partition UUID derives from with the build seed (never change one: rebuilds stay
   * byte-identical). A verity data/hash partition holding a tree uses its root hash instead.
   */
  uuidPurpose: string;
  /** One line for doc/disk-layout.md. */
  contents: string;
}

/** GPT name of an empty CoreOS slot (systemd-sysupdate's convention for an unused slot). */
export const EMPTY_SLOT = '_empty';

const CERTS = '/certs';
const CONFIG = '/config';
const SLOT_SIZE: PartitionSize = { spec: 'coreos', defaultMiB: 0, headroom: 1.25 };
const HASH_SIZE: PartitionSize = { defaultMiB: 0, headroom: 1.25 };
const SIG_SIZE: PartitionSize = { defaultMiB: 1 };

function slotRows(slot: 'a' | 'b'): PartitionRow[] {
  const a = slot === 'a';
  return [
    {
      role: `coreos-${slot}` as const,
      label: { slotSuffix: '' },
      type: DPS.root,
      typeName: 'DPS root x86-64',
      filesystem: 'erofs',
      verity: 'data',
      slot,
      readOnly: true,
      size: SLOT_SIZE,
      uuidPurpose: `coreos-${slot}`,
      contents: a ? 'CoreOS A: erofs (uncompressed)' : 'CoreOS B: the same, empty until an update writes it',
    },
    {
      role: `coreos-${slot}-verity` as const,
      label: { slotSuffix: '.verity' },
      type: DPS.rootVerity,
      typeName: 'DPS root-verity',
      filesystem: null,
      verity: 'hash',
      slot,
      readOnly: true,
      size: HASH_SIZE,
      uuidPurpose: `coreos-${slot}-verity`,
      contents: a
        ? "CoreOS A's dm-verity hash area (veritysetup superblock at offset 0)"
        : "CoreOS B's hash area (empty)",
    },
    {
      role: `coreos-${slot}-verity-sig` as const,
      label: { slotSuffix: '.verity-sig' },
      type: MILKYWAY.coreosVeritySig,
      typeName: 'MilkyWay coreos-verity-sig',
      filesystem: null,
      verity: 'sig',
      slot,
      readOnly: true,
      size: SIG_SIZE,
      uuidPurpose: `coreos-${slot}-sig`,
      contents: a ? 'JSON signature of CoreOS A (below)' : "CoreOS B's signature (empty)",
    },
  ];
}

/** The partitions of a MilkyWayLinux disk, in disk order. */
export const DISK_LAYOUT: readonly PartitionRow[] = [
  {
    role: 'esp',
    label: 'esp',
    type: DPS.esp,
    typeName: 'DPS ESP',
    filesystem: 'vfat',
    readOnly: false,
    size: { spec: 'esp', defaultMiB: 64 },
    uuidPurpose: 'esp-part',
    contents:
      "vfat: `EFI/BOOT/BOOTX64.EFI`, stage 1: a UKI signed with the user's Secure Boot db key (doc/boot.md)",
  },
  {
    role: 'boot-a',
    label: 'boot-a',
    type: MILKYWAY.boot,
    typeName: 'MilkyWay boot',
    filesystem: 'stage2',
    readOnly: false,
    slotBits: true,
    // Built as slot a known good: priority 2 (bits 48–51), successful (bit 56).
    gptAttributes: { other: (2n << 48n) | (1n << 56n) },
    size: { spec: 'boot', defaultMiB: 64 },
    uuidPurpose: 'boot-a',
    contents:
      'raw: stage 2 — ML-DSA descriptor, signature, kexec-signed kernel, initramfs (doc/stage2-format.md)',
  },
  {
    role: 'boot-b',
    label: 'boot-b',
    type: MILKYWAY.boot,
    typeName: 'MilkyWay boot',
    filesystem: 'stage2',
    readOnly: false,
    slotBits: true,
    size: { spec: 'boot', defaultMiB: 64 },
    uuidPurpose: 'boot-b',
    contents: 'stage 2 of slot b: empty (slot bits 0) until an A/B update writes it',
  },
  ...slotRows('a'),
  ...slotRows('b'),
  {
    role: 'certificates',
    label: 'certificates',
    type: MILKYWAY.certificates,
    typeName: 'MilkyWay certificates',
    filesystem: 'erofs',
    verity: 'appended',
    readOnly: true,
    mount: { target: CERTS, options: 'nodev,nosuid,noexec' },
    selinuxType: 'milkyway_certs_t',
    size: { spec: 'certificates', defaultMiB: 1, grow: true },
    uuidPurpose: 'certificates-part',
    contents:
      'erofs: `vendor-root.crt`, `user-root.crt`, extra anchors, `*.crl`; dm-verity tree appended after the erofs',
  },
  {
    role: 'secure-config',
    label: 'secure-config',
    type: MILKYWAY.secureConfig,
    typeName: 'MilkyWay secure-config',
    filesystem: 'erofs',
    readOnly: true,
    mount: { target: CONFIG, options: 'nodev,nosuid,noexec' },
    selinuxType: 'milkyway_config_t',
    size: { spec: 'secureConfig', defaultMiB: 1, grow: true },
    uuidPurpose: 'secure-config-part',
    contents: 'erofs: `secure.json`, a keys/ envelope of type `config` signed by the user key',
  },
  {
    role: 'secure-dynamic-config',
    label: 'secure-dynamic-config',
    type: MILKYWAY.secureDynamicConfig,
    typeName: 'MilkyWay secure-dynamic-config',
    filesystem: 'ext4',
    readOnly: false,
    mount: { target: '/config-secure-dynamic', options: 'nodev,nosuid,noexec' },
    selinuxType: 'milkyway_config_t',
    size: { spec: 'secureDynamicConfig', defaultMiB: 8, grow: true },
    uuidPurpose: 'sdc-part',
    contents: 'ext4, empty',
  },
  {
    role: 'dynamic-config',
    label: 'dynamic-config',
    type: MILKYWAY.dynamicConfig,
    typeName: 'MilkyWay dynamic-config',
    filesystem: 'ext4',
    readOnly: false,
    mount: { target: '/config-dynamic', options: 'nodev,nosuid,noexec' },
    selinuxType: 'milkyway_config_t',
    size: { spec: 'dynamicConfig', defaultMiB: 8, grow: true },
    uuidPurpose: 'dc-part',
    contents: 'ext4, empty',
  },
  {
    role: 'layers',
    label: 'layers',
    type: MILKYWAY.layers,
    typeName: 'MilkyWay layers',
    filesystem: 'ext4',
    readOnly: false,
    mount: { target: '/layers', options: 'nodev,nosuid,noexec' },
    selinuxType: 'milkyway_layer_store_t',
    size: { spec: 'layers', defaultMiB: 128, grow: true },
    uuidPurpose: 'layers-part',
    contents: 'ext4: `<name>.mwl` for each preinstalled layer',
  },
  {
    role: 'data',
    label: 'data',
    type: MILKYWAY.data,
    typeName: 'MilkyWay data',
    filesystem: 'ext4',
    readOnly: false,
    mount: { target: '/data', options: 'nodev,nosuid' },
    size: { spec: 'data', defaultMiB: 128, grow: true },
    uuidPurpose: 'data-part',
    contents: 'ext4: `common/`, `secure/`, `group/`',
  },
  {
    role: 'peer-identity',
    label: 'peer-identity',
    type: MILKYWAY.peerIdentity,
    typeName: 'MilkyWay peer-identity',
    filesystem: 'ext4',
    readOnly: true,
    mount: { target: '/identity', options: 'nodev,nosuid,noexec' },
    selinuxType: 'milkyway_identity_t',
    size: { spec: 'peerIdentity', defaultMiB: 4, grow: true },
    optional: true,
    uuidPurpose: 'peer-part',
    contents: "ext4: the spec's `peerIdentity` folder (peer key, certificate, KEM key)",
  },
];

/** The row of `role`. */
export function layoutRow(role: PartitionRole): PartitionRow {
  const row = DISK_LAYOUT.find((r) => r.role === role);
  if (row === undefined) throw new RangeError(`Cannot find partition role ${role} in the disk layout`);
  return row;
}
