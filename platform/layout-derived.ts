// What the rest of the system reads off the disk layout table (disk-layout.ts): GPT names,
// attribute bits, the agent's mounts and paths, the spec's default sizes and each row's size
// rule. Pure functions of the table, so a new row changes all of them at once.
import { encodeAttributes, type PartitionAttributes } from '../formats/index.ts';
import {
  DISK_LAYOUT,
  EMPTY_SLOT,
  layoutRow,
  type PartitionRole,
  type PartitionRow,
  type PartitionSizeKey,
} from './disk-layout.ts';

/** The GPT name of `row`: fixed, or the slot's `base` (`name_version`) plus the suffix, or EMPTY_SLOT. */
export function partitionLabel(row: PartitionRow, base: string | typeof EMPTY_SLOT): string {
  if (typeof row.label === 'string') return row.label;
  return base === EMPTY_SLOT ? EMPTY_SLOT : `${base}${row.label.slotSuffix}`;
}

/** The GPT attribute flags `row` is written with. */
export function rowAttributes(row: PartitionRow): PartitionAttributes {
  return { ...row.gptAttributes, ...(row.readOnly ? { readOnly: true } : {}) };
}

/** The 64-bit GPT attribute field `row` is written with (what `verify` expects to read). */
export function rowAttributeBits(row: PartitionRow): bigint {
  return encodeAttributes(rowAttributes(row));
}

/** What the build summary calls a partition's content: `ext4`, `erofs+verity`, `verity`, `verity-sig`, … */
export function contentName(row: PartitionRow): string {
  if (row.verity === 'hash') return 'verity';
  if (row.verity === 'sig') return 'verity-sig';
  if (row.verity === 'appended') return `${row.filesystem}+verity`;
  return row.filesystem ?? 'unknown';
}

/** A mount of the agent config (doc/agent-config.md `mounts`). */
export interface LayoutMount {
  source: string;
  target: string;
  type: string;
  options: string;
  /** SELinux context= the agent adds when the kernel runs SELinux. */
  context?: string;
}

/** The agent's boot mounts, in table order: every mounted row (the optional ones only when asked). */
export function layoutMounts(o: { optional: readonly PartitionRole[] }): LayoutMount[] {
  const out: LayoutMount[] = [];
  for (const row of DISK_LAYOUT) {
    if (row.mount === undefined || row.filesystem === null || typeof row.label !== 'string') continue;
    if (row.optional === true && !o.optional.includes(row.role)) continue;
    out.push({
      source: `PARTLABEL=${row.label}`,
      target: row.mount.target,
      type: row.filesystem,
      options: `${row.readOnly ? 'ro' : 'rw'},${row.mount.options}`,
      ...(row.selinuxType === undefined ? {} : { context: `system_u:object_r:${row.selinuxType}:s0` }),
    });
  }
  return out;
}

/** Every mount point of the layout (CoreOS's root is read-only, so they exist in the image). */
export const MOUNT_POINTS: readonly string[] = DISK_LAYOUT.flatMap((r) =>
  r.mount === undefined ? [] : [r.mount.target],
);

/** Where the layout mounts `role` in the running system. */
export function mountPoint(role: PartitionRole): string {
  const m = layoutRow(role).mount;
  if (m === undefined) throw new RangeError(`Partition ${role} is not mounted by the agent`);
  return m.target;
}

/** The secure config's file inside the secure-config partition. */
export const SECURE_CONFIG_FILE = 'secure.json';

/** Where the running system finds what the layout's partitions hold (the agent's defaults). */
export const LAYOUT_PATHS = {
  trustAnchorsDir: mountPoint('certificates'),
  secureConfig: `${mountPoint('secure-config')}/${SECURE_CONFIG_FILE}`,
  layersDir: mountPoint('layers'),
  dataDir: mountPoint('data'),
} as const;

/** The spec's default `partitions` sizes in MiB, from the rows' sizes. */
export const DEFAULT_PARTITION_SIZES: Readonly<Record<PartitionSizeKey, number>> = Object.fromEntries(
  DISK_LAYOUT.flatMap((r) => (r.size.spec === undefined ? [] : [[r.size.spec, r.size.defaultMiB]])),
) as Record<PartitionSizeKey, number>;

const MiB = 1 << 20;

/** `n` bytes rounded up to whole MiB, at least 1 MiB (partitions sit on 1 MiB boundaries). */
export const roundMiB = (n: number): number => Math.max(MiB, Math.ceil(n / MiB) * MiB);

/**
 * Bytes of `row`'s partition for `contentBytes` of content, with the spec's `sizes`. An exact
 * size may come out smaller than the content: the caller refuses that (partitionFits).
 */
export function partitionBytes(
  row: PartitionRow,
  sizes: Readonly<Record<PartitionSizeKey, number>>,
  contentBytes: number,
): number {
  const mib = row.size.spec === undefined ? row.size.defaultMiB : sizes[row.size.spec];
  const need = contentBytes * (row.size.headroom ?? 1);
  if (mib === 0) return roundMiB(need);
  return row.size.grow === true ? Math.max(mib * MiB, roundMiB(need)) : mib * MiB;
}
