// The two CoreOS slots of a MilkyWayLinux disk and their boot state (doc/how-to-update.md,
// "Slot state"): ChromeOS/Bottlerocket GPT attribute bits — priority 48–51, tries left 52–55,
// successful 56 — the boot chain's stage 1's own bits and rules (bootchain/slot.ts). The bits
// live on the slot's `boot-a`/`boot-b` partition when the disk has one (the boot chain's
// layout; that partition also holds the slot's stage 2), otherwise on the slot's CoreOS data
// partition (a disk without a boot chain). A slot's partitions are found by type in disk
// order, the first of each type being slot a, as stage 1 and the layout check find them.
import { readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { DPS, type GptPartition, readGpt } from '../formats/index.ts';
import { EMPTY_SLOT, PARTITION_TYPES } from '../platform/index.ts';
import {
  BOOT_PARTITION_TYPE,
  decodeSlot,
  encodeSlot,
  type SlotName,
  SLOTS,
  type SlotState,
} from '../bootchain/index.ts';
import { UpdateError } from './update-error.ts';

// The slot bits and their rules are the boot chain's (one definition, bootchain/slot.ts, which
// the C stage 1 mirrors); update/ sits above bootchain/ and re-exports them for its users.
export {
  decodeSlot,
  encodeSlot,
  type SlotName,
  SLOTS,
  type SlotState,
  willBoot,
} from '../bootchain/index.ts';
export const other = (s: SlotName): SlotName => (s === 'a' ? 'b' : 'a');

/** The slot bits as one mask (the layout check ignores them on the partitions that carry them). */
export const SLOT_BITS_MASK = encodeSlot(0n, { priority: 15, tries: 15, successful: true });

export interface DiskSlot {
  name: SlotName;
  state: SlotState;
  /**
   * True when no partition of the disk carries slot bits yet (a disk built before them):
   * slot a is then taken as known good (priority 2, successful), slot b as empty.
   */
  implicit: boolean;
  /** The partition whose attribute bits hold the state (`boot`, or `data` without a boot chain). */
  statePartition: GptPartition;
  /** The slot's stage-2 boot partition (`boot-a` / `boot-b`), null on a disk without a boot chain. */
  boot: GptPartition | null;
  data: GptPartition;
  verity: GptPartition;
  sig: GptPartition;
  /** `NAME_VERSION`, or null for an empty slot. */
  label: string | null;
  osName: string | null;
  version: string | null;
  /** The root hash the data and hash partition GUIDs spell (DPS), null when empty. */
  rootHash: string | null;
}

export type DiskSlots = Record<SlotName, DiskSlot>;

/** CoreOS root hash as the DPS partition UUIDs spell it (data UUID ‖ hash UUID). */
export function rootHashOf(data: GptPartition, hash: GptPartition): string {
  return (data.uuid + hash.uuid).replaceAll('-', '').toLowerCase();
}

/** The partition UUIDs the DPS convention derives from a root hash (64 hex digits). */
export function slotUuids(rootHash: string): { data: string; hash: string } {
  const u = (s: string) =>
    `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20, 32)}`;
  return { data: u(rootHash.slice(0, 32)), hash: u(rootHash.slice(32)) };
}

/** A block device's size from sysfs (its fstat size is 0); nothing for a disk image. */
async function deviceSize(disk: string): Promise<{ deviceBytes?: bigint }> {
  const st = await stat(disk).catch(() => undefined);
  if (st === undefined || !st.isBlockDevice()) return {};
  const sectors = (await readFile(`/sys/class/block/${basename(disk)}/size`, 'utf8')).trim();
  return /^\d+$/.test(sectors) ? { deviceBytes: BigInt(sectors) * 512n } : {};
}

/** Reads both slots of `disk` (a disk image or the block device the machine booted from). */
export async function readDiskSlots(disk: string): Promise<DiskSlots> {
  let parts: GptPartition[];
  try {
    parts = (await readGpt(disk, await deviceSize(disk))).partitions;
  } catch (e) {
    throw new UpdateError('E_SLOT_DISK', `Cannot read the slots of ${disk}: ${(e as Error).message}`, {
      path: disk,
      cause: e,
    });
  }
  const ofType = (t: string) => parts.filter((p) => p.type === t);
  const datas = ofType(DPS.root);
  const hashes = ofType(DPS.rootVerity);
  const sigs = ofType(PARTITION_TYPES.coreosVeritySig as string);
  const boots = ofType(BOOT_PARTITION_TYPE);
  const slots: Partial<DiskSlots> = {};
  for (const [i, name] of SLOTS.entries()) {
    const data = datas[i];
    const verity = hashes[i];
    const sig = sigs[i];
    if (data === undefined || verity === undefined || sig === undefined)
      throw new UpdateError(
        'E_SLOT_DISK',
        `${disk} has no CoreOS slot ${name} (data, verity and verity-sig partitions)`,
        { path: disk },
      );
    const boot = boots[i] ?? null;
    if (boots.length > 0 && boot === null)
      throw new UpdateError('E_SLOT_DISK', `${disk} has a boot-a partition but no boot-b`, { path: disk });
    const statePartition = boot ?? data;
    const empty = data.name === EMPTY_SLOT;
    const m = /^([^_]+)_([^_]+)$/.exec(data.name);
    slots[name] = {
      name,
      state: decodeSlot(statePartition.attributes),
      implicit: false,
      statePartition,
      boot,
      data,
      verity,
      sig,
      label: empty ? null : data.name,
      osName: m?.[1] ?? null,
      version: m?.[2] ?? null,
      rootHash: empty ? null : rootHashOf(data, verity),
    };
  }
  const out = slots as DiskSlots;
  const noBits = SLOTS.every((n) => (out[n].statePartition.attributes & SLOT_BITS_MASK) === 0n);
  if (noBits && out.a.label !== null) {
    out.a = { ...out.a, state: { priority: 2, tries: 0, successful: true }, implicit: true };
    out.b = { ...out.b, implicit: true };
  }
  return out;
}

/** The slot whose root hash the running kernel's command line names (`mway.roothash`). */
export function runningSlot(slots: DiskSlots, rootHash: string): SlotName {
  for (const n of SLOTS) if (slots[n].rootHash === rootHash) return n;
  throw new UpdateError(
    'E_SLOT_STATE',
    `No slot of this disk holds the running CoreOS (root hash ${rootHash})`,
  );
}
