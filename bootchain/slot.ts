// Boot slots `a` and `b` (doc/boot.md, "Slots"): ChromeOS's GPT attribute bits on the
// `boot-a` / `boot-b` partitions — priority in bits 48–51, tries left in 52–55, successful in
// bit 56 (Bottlerocket's gptprio.rs, ChromeOS cgpt). A slot will boot when it has a priority
// and either tries left or a successful mark. Stage 1 picks the highest such slot (a on a tie);
// a slot not yet marked successful is a trial: its tries are decremented on disk *before* it is
// verified and booted, so any failure after that point counts. A slot that fails verification
// gets priority 0 and the other slot is tried. The C stage 1 (bootchain/verifier/slot.c) runs
// the same plan; test/bootchain/slot-vectors.json holds the vectors both must agree on.
import { type GptPartition, readGpt, writePartitionAttributes } from '../formats/index.ts';
import { BootchainError } from './bootchain-error.ts';

export type SlotName = 'a' | 'b';
export const SLOTS: readonly SlotName[] = ['a', 'b'];

/** The GPT partition names of the two slots. */
export const SLOT_PARTITION = { a: 'boot-a', b: 'boot-b' } as const;

export interface SlotState {
  priority: number;
  tries: number;
  successful: boolean;
}

const PRIORITY_SHIFT = 48n;
const TRIES_SHIFT = 52n;
const SUCCESSFUL_BIT = 56n;
const MASK = ~((0xfn << PRIORITY_SHIFT) | (0xfn << TRIES_SHIFT) | (1n << SUCCESSFUL_BIT));

export function decodeSlot(attributes: bigint): SlotState {
  return {
    priority: Number((attributes >> PRIORITY_SHIFT) & 0xfn),
    tries: Number((attributes >> TRIES_SHIFT) & 0xfn),
    successful: ((attributes >> SUCCESSFUL_BIT) & 1n) === 1n,
  };
}

/** `attributes` with the slot bits replaced by `s` (every other bit kept). */
export function encodeSlot(attributes: bigint, s: SlotState): bigint {
  for (const [k, v] of [
    ['priority', s.priority],
    ['tries', s.tries],
  ] as const)
    if (!Number.isInteger(v) || v < 0 || v > 15)
      throw new BootchainError('E_SLOT_BAD', `Slot ${k} ${v} is not 0 to 15`);
  return (
    (attributes & MASK) |
    (BigInt(s.priority) << PRIORITY_SHIFT) |
    (BigInt(s.tries) << TRIES_SHIFT) |
    (s.successful ? 1n << SUCCESSFUL_BIT : 0n)
  );
}

export const willBoot = (s: SlotState): boolean => s.priority > 0 && (s.tries > 0 || s.successful);

/** Bootable slots, best first: highest priority, a before b on a tie. */
export function bootOrder(slots: Readonly<Partial<Record<SlotName, SlotState>>>): SlotName[] {
  return SLOTS.filter((n) => {
    const s = slots[n];
    return s !== undefined && willBoot(s);
  }).sort((x, y) => (slots[y]?.priority ?? 0) - (slots[x]?.priority ?? 0));
}

/** One step stage 1 takes, for the shared vectors: a GPT write, a verification, a boot. */
export type SlotStep =
  | { op: 'write'; slot: SlotName; state: SlotState }
  | { op: 'verify'; slot: SlotName; ok: boolean }
  | { op: 'boot'; slot: SlotName; trial: boolean }
  | { op: 'none' };

/**
 * The whole plan stage 1 follows, given the two slots' states and whether each would verify:
 * for each slot in boot order — decrement tries if it is a trial (write), verify, then boot it
 * or mark it bad (priority 0, write) and go on; `none` when nothing is left.
 */
export function planBoot(
  slots: Readonly<Partial<Record<SlotName, SlotState>>>,
  verifies: Readonly<Partial<Record<SlotName, boolean>>>,
): SlotStep[] {
  const steps: SlotStep[] = [];
  const state: Partial<Record<SlotName, SlotState>> = { ...slots };
  for (const slot of bootOrder(state)) {
    let s = state[slot] as SlotState;
    const trial = !s.successful;
    if (trial) {
      s = { ...s, tries: s.tries - 1 };
      state[slot] = s;
      steps.push({ op: 'write', slot, state: s });
    }
    const ok = verifies[slot] === true;
    steps.push({ op: 'verify', slot, ok });
    if (ok) {
      steps.push({ op: 'boot', slot, trial });
      return steps;
    }
    s = { ...s, priority: 0 };
    state[slot] = s;
    steps.push({ op: 'write', slot, state: s });
  }
  steps.push({ op: 'none' });
  return steps;
}

/** The boot-a / boot-b partitions of a disk's GPT. */
export function slotPartitions(
  partitions: readonly GptPartition[],
  bootType: string,
): Partial<Record<SlotName, GptPartition>> {
  const out: Partial<Record<SlotName, GptPartition>> = {};
  for (const n of SLOTS) {
    const p = partitions.find((x) => x.type === bootType && x.name === SLOT_PARTITION[n]);
    if (p !== undefined) out[n] = p;
  }
  return out;
}

/** Reads both slots' states from a disk image. */
export async function readSlots(
  disk: string,
  bootType: string,
): Promise<Partial<Record<SlotName, SlotState & { partition: GptPartition }>>> {
  const parts = slotPartitions((await readGpt(disk)).partitions, bootType);
  if (parts.a === undefined)
    throw new BootchainError('E_SLOT_MISSING', `${disk} has no ${SLOT_PARTITION.a} partition`);
  const out: Partial<Record<SlotName, SlotState & { partition: GptPartition }>> = {};
  for (const n of SLOTS) {
    const p = parts[n];
    if (p !== undefined) out[n] = { ...decodeSlot(p.attributes), partition: p };
  }
  return out;
}

/** Writes slot `slot`'s state into both GPT copies of `disk` (other attribute bits kept). */
export async function writeSlot(disk: string, bootType: string, slot: SlotName, s: SlotState): Promise<void> {
  if (!SLOTS.includes(slot))
    throw new BootchainError('E_SLOT_BAD', `No slot ${JSON.stringify(slot)} (a or b)`);
  const p = (await readSlots(disk, bootType))[slot];
  if (p === undefined)
    throw new BootchainError('E_SLOT_MISSING', `${disk} has no ${SLOT_PARTITION[slot]} partition`);
  writePartitionAttributes(disk, p.partition.index, encodeSlot(p.partition.attributes, s));
}
