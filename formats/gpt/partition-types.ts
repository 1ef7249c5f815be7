// GPT partition type GUIDs of the UAPI Discoverable Partitions Specification (x86-64) and
// the entry attribute bits (UEFI 2.10 §5.3.3 + DPS). MilkyWay's own type GUIDs are not a
// format matter: they live with the disk layout in imagebuild/partition-types.ts.

/** Discoverable Partitions Specification type GUIDs (x86-64), lower-case. */
export const DPS = {
  esp: 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b',
  xbootldr: 'bc13c2ff-59e6-4262-a352-b275fd6f7172',
  root: '4f68bce3-e8cd-4db1-96e7-fbcaf984b709',
  rootVerity: '2c7357ed-ebd2-46d9-aec1-23d437ec2bf5',
  rootVeritySig: '41092b05-9fc8-4523-994f-2def0408b176',
  usr: '8484680c-9521-48c6-9c11-b0720656f69e',
  usrVerity: '77ff5f63-e7b6-4633-acf4-1565b864c0e6',
  usrVeritySig: 'e7bb33fb-06cf-4e81-8273-e543b413e2e2',
  var: '4d21b016-b534-45c2-a9fb-5c16e091fd2d',
  srv: '3b8f8425-20e0-4f3b-907f-1a25a76f98e8',
  linuxData: '0fc63daf-8483-4772-8e79-3d69d8477de4',
} as const;

/** The name of a type GUID (case-insensitive) in `names` (default: the DPS table), or undefined. */
export function partitionTypeName(
  guid: string,
  names: Readonly<Record<string, string>> = DPS,
): string | undefined {
  const g = guid.toLowerCase();
  for (const [name, value] of Object.entries(names)) if (value === g) return name;
  return undefined;
}

/** Attribute bits of a GPT entry (UEFI + DPS). */
export const GPT_ATTR = {
  /** UEFI: required for the platform to function. */
  required: 0n,
  /** UEFI: firmware must not produce an EFI_BLOCK_IO for it. */
  noBlockIo: 1n,
  /** UEFI: legacy BIOS bootable. */
  legacyBoot: 2n,
  /** DPS: grow the file system to the partition size on first boot. */
  growFs: 59n,
  /** DPS: mount read-only. */
  readOnly: 60n,
  /** DPS: do not mount automatically. */
  noAuto: 63n,
} as const;

/** Partition attribute flags as booleans, used by writers and readers. */
export interface PartitionAttributes {
  readOnly?: boolean;
  noAuto?: boolean;
  growFs?: boolean;
  required?: boolean;
  legacyBoot?: boolean;
  /** Any other raw bits (bit n set = 1n << n). */
  other?: bigint;
}

/** Packs attribute flags into the 64-bit GPT attribute field. */
export function encodeAttributes(a: PartitionAttributes = {}): bigint {
  let v = a.other ?? 0n;
  if (a.readOnly === true) v |= 1n << GPT_ATTR.readOnly;
  if (a.noAuto === true) v |= 1n << GPT_ATTR.noAuto;
  if (a.growFs === true) v |= 1n << GPT_ATTR.growFs;
  if (a.required === true) v |= 1n << GPT_ATTR.required;
  if (a.legacyBoot === true) v |= 1n << GPT_ATTR.legacyBoot;
  return BigInt.asUintN(64, v);
}

/** Unpacks the 64-bit GPT attribute field; unknown bits land in `other`. */
export function decodeAttributes(v: bigint): Required<PartitionAttributes> {
  const bit = (n: bigint) => ((v >> n) & 1n) === 1n;
  const known =
    (1n << GPT_ATTR.readOnly) |
    (1n << GPT_ATTR.noAuto) |
    (1n << GPT_ATTR.growFs) |
    (1n << GPT_ATTR.required) |
    (1n << GPT_ATTR.legacyBoot);
  return {
    readOnly: bit(GPT_ATTR.readOnly),
    noAuto: bit(GPT_ATTR.noAuto),
    growFs: bit(GPT_ATTR.growFs),
    required: bit(GPT_ATTR.required),
    legacyBoot: bit(GPT_ATTR.legacyBoot),
    other: v & ~known,
  };
}
