// The operator's two slot switches (doc/how-to-update.md, "Roll back or cancel"): Bottlerocket's
// rollback-to-inactive — the other slot, known good, boots next; refused unless it will boot
// and its signed rollback index is at least the machine's floor, since stage 1 would refuse it
// anyway — and cancel-upgrade — an armed or half-written inactive slot is made empty again on
// the GPT (its bits cleared, its names `_empty`), so nothing boots it, and the running slot is
// the one boot choice again (priority 2). Both write one GPT edit, both copies.
import { open } from 'node:fs/promises';
import { decodeStage2Prefix, KERNEL_OFFSET, STAGE2_HEADER } from '../bootchain/index.ts';
import { type PartitionEntryEdit, SECTOR, writePartitionEntries } from '../formats/index.ts';
import { EMPTY_SLOT } from '../platform/index.ts';
import {
  type DiskSlot,
  encodeSlot,
  other,
  readDiskSlots,
  type SlotName,
  type SlotState,
  willBoot,
} from './disk-slots.ts';
import { UpdateError } from './update-error.ts';

const stateEdit = (s: DiskSlot, st: SlotState): PartitionEntryEdit => ({
  index: s.statePartition.index,
  attributes: encodeSlot(s.statePartition.attributes, st),
});

/**
 * The rollback index in the slot's stage-2 descriptor (on its boot partition), null on a disk
 * without a boot chain or when no descriptor is there. Read without checking its signature:
 * it only decides a refusal here, and stage 1 checks the signature (and its own floor) at the
 * boot itself, so a forged index can at most let a rollback through that stage 1 then refuses.
 */
export async function slotRollbackIndex(disk: string, slot: DiskSlot): Promise<number | null> {
  if (slot.boot === null) return null;
  const head = new Uint8Array(KERNEL_OFFSET);
  const fh = await open(disk, 'r');
  try {
    await fh.read(head, 0, head.length, Number(slot.boot.firstLba) * SECTOR);
  } finally {
    await fh.close();
  }
  try {
    decodeStage2Prefix(head, `slot ${slot.name}'s stage 2`);
  } catch {
    return null;
  }
  return Number(STAGE2_HEADER.read(head, 'rollbackIndex') as bigint);
}

export interface RollbackResult {
  from: SlotName;
  to: SlotName;
  version: string | null;
  rollbackIndex: number | null;
  /** The running slot was an undecided trial: it is marked bad. */
  abandonedTrial: boolean;
}

/**
 * Makes the other slot of `disk` the next boot (priority 2 over the running slot's 1), or
 * throws E_ROLLBACK_NOT_BOOTABLE / E_ROLLBACK_FLOOR and writes nothing. A running trial is
 * marked bad (priority 0): the operator's rollback decides it.
 */
export async function rollbackToOther(
  disk: string,
  running: SlotName,
  rollbackFloor: number,
): Promise<RollbackResult> {
  const slots = await readDiskSlots(disk);
  const r = slots[running];
  const o = slots[other(running)];
  const why =
    o.label === null
      ? 'is empty'
      : !o.state.successful
        ? willBoot(o.state)
          ? 'is an armed update that never passed its health gate (cancel it with mway update --cancel)'
          : 'is marked bad'
        : !willBoot(o.state)
          ? 'has priority 0'
          : null;
  if (why !== null)
    throw new UpdateError(
      'E_ROLLBACK_NOT_BOOTABLE',
      `Cannot roll back to slot ${o.name}: it ${why}; slot ${running} stays the boot choice`,
      { details: { slot: o.name, ...o.state } },
    );
  const index = await slotRollbackIndex(disk, o);
  if (rollbackFloor > 0 && (index === null || index < rollbackFloor))
    throw new UpdateError(
      'E_ROLLBACK_FLOOR',
      `Cannot roll back to slot ${o.name} (${o.version ?? '?'}): its rollback index is ${index ?? 'unknown (no signed stage 2 on the disk)'}, below this machine's floor ${rollbackFloor}`,
      { details: { slot: o.name, rollbackIndex: index, rollbackFloor } },
    );
  const abandonedTrial = !r.state.successful;
  writePartitionEntries(disk, [
    stateEdit(o, { priority: 2, tries: 0, successful: true }),
    stateEdit(r, abandonedTrial ? { priority: 0, tries: 0, successful: false } : { ...r.state, priority: 1 }),
  ]);
  return { from: running, to: o.name, version: o.version, rollbackIndex: index, abandonedTrial };
}

export interface CancelResult {
  slot: SlotName;
  /** The version the slot was named for before, null when it was empty already. */
  version: string | null;
  change: 'changed' | 'unchanged';
}

/**
 * Disarms the inactive slot of `disk` unless it is the known-good fallback: its bits cleared
 * and its names `_empty` (what installToSlot's first step writes), the running slot back to
 * priority 2. A slot already empty and unbootable is left as it is (`unchanged`).
 */
export async function disarmInactive(disk: string, running: SlotName): Promise<CancelResult> {
  const slots = await readDiskSlots(disk);
  const t = slots[other(running)];
  const r = slots[running];
  const isEmpty = t.label === null && t.state.priority === 0 && t.state.tries === 0;
  if (t.state.successful || isEmpty) return { slot: t.name, version: t.version, change: 'unchanged' };
  const edits = new Map<number, PartitionEntryEdit>();
  const add = (e: PartitionEntryEdit) => edits.set(e.index, { ...(edits.get(e.index) ?? {}), ...e });
  add(stateEdit(t, { priority: 0, tries: 0, successful: false }));
  for (const p of [t.data, t.verity, t.sig]) add({ index: p.index, name: EMPTY_SLOT });
  if (r.state.successful) add(stateEdit(r, { ...r.state, priority: 2 }));
  writePartitionEntries(disk, [...edits.values()]);
  return { slot: t.name, version: t.version, change: 'changed' };
}
