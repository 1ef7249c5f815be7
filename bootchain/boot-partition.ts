// The boot partitions `boot-a` / `boot-b` (doc/disk-layout.md): raw, each holding one stage-2
// image (descriptor, signature, kernel, initramfs), with the slot bits of bootchain/slot.ts in
// their GPT attributes. Their type GUID is MilkyWay's own (random v4, minted once; never
// change it): no Discoverable Partitions Specification type means "stage-2 boot slot", and a
// type of our own (in platform/partition-types.ts, beside the others) keeps systemd's DPS rules about attribute bits 60–63 away from them.
import { MILKYWAY } from '../platform/index.ts';

export const BOOT_PARTITION_TYPE: string = MILKYWAY.boot;

/** Size of each boot partition when the spec does not say (kernel ~8 MiB + initramfs ~7 MiB, room to grow). */
export const DEFAULT_BOOT_MIB = 64;
