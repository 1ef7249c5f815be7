// The two CoreOS slots of a MilkyWayLinux disk and their boot state (doc/how-to-update.md,
// "Slot state"): ChromeOS/Bottlerocket GPT attribute bits — priority 48–51, tries left 52–55,
// successful 56 — the same bits and rules as the boot chain's stage 1 (bootchain/slot.ts,
// whose decode/encode these mirror until that part is on main). The bits live on the slot's
// `boot-a`/`boot-b` partition when the disk has one (the boot chain's layout), otherwise on
// the slot's CoreOS data partition (today's layout). A slot's partitions are found by type in
// disk order, the first of each type being slot a, as the layout check finds them.
import { readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { DPS, type GptPartition, readGpt } from '../formats/index.ts';
import { EMPTY_SLOT, PARTITION_TYPES } from '../platform/index.ts';
import { UpdateError } from './update-error.ts';

export type SlotName = 'a' | 'b';
export const SLOTS: readonly SlotName[] = ['a', 'b'];
export const other = (s: SlotName): SlotName => (s === 'a' ? 'b' : 'a');

export interface SlotState {
  priority: number;
  tries: number;
  successful: boolean;
}

const PRIORITY_SHIFT = 48n;
const TRIES_SHIFT = 52n;
const SUCCESSFUL_BIT = 56n;
const MASK = ~((0xfn << PRIORITY_SHIFT) | (0xfn << TRIES_SHIFT) | (1n << SUCCESSFUL_BIT));
/** The slot bits as one mask (the layout check ignores them on the partitions that carry them). */
export const SLOT_BITS_MASK = BigInt.asUintN(64, ~MASK);

export function decodeSlot(attributes: bigint): SlotState {
  return {
    priority: Number((attributes >> PRIORITY_SHIFT) & 0xfn),
    tries: Number((attributes >> TRIES_SHIFT) & 0xfn),
    successful: ((attributes >> SUCCESSFUL_BIT) & 1n) === 1n,
  };
}

/** `attributes` with the slot bits replaced by `s` (every other bit kept). */
export function encodeSlot(attributes: bigint, s: SlotState): bigint {
  for (const [k, n] of [
    ['priority', s.priority],
    ['tries', s.tries],
  ] as const)
    if (!Number.isInteger(n) || n < 0 || n > 15)
      throw new UpdateError('E_SLOT_STATE', `Slot ${k} ${n} is not 0 to 15`);
  return (
    (attributes & MASK) |
    (BigInt(s.priority) << PRIORITY_SHIFT) |
    (BigInt(s.tries) << TRIES_SHIFT) |
    (s.successful ? 1n << SUCCESSFUL_BIT : 0n)
  );
}

export const willBoot = (s: SlotState): boolean => s.priority > 0 && (s.tries > 0 || s.successful);

export interface DiskSlot {
  name: SlotName;
  state: SlotState;
  /**
   * True when no partition of the disk carries slot bits yet (a disk built before them):
   * slot a is then taken as known good (priority 2, successful), slot b as empty.
   */
  implicit: boolean;
  /** The partition whose attribute bits hold the state. */
  statePartition: GptPartition;
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
    const statePartition = parts.find((p) => p.name === `boot-${name}`) ?? data;
    const empty = data.name === EMPTY_SLOT;
    const m = /^([^_]+)_([^_]+)$/.exec(data.name);
    slots[name] = {
      name,
      state: decodeSlot(statePartition.attributes),
      implicit: false,
      statePartition,
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
