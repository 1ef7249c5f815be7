// Writing a verified bundle into the inactive slot (doc/how-to-update.md, "What a peer does"),
// Bottlerocket's clear-inactive → write → mark-inactive-valid → upgrade-to-inactive in one
// function: the slot is first made empty on the GPT (its bits cleared, its names `_empty`),
// so a write cut short by a crash or power cut leaves a slot nothing will boot; then the
// erofs, tree and signature are copied, and the stage 2 into the slot's boot partition when
// the disk boots through the boot chain; what was written is verified against the signed root
// hash (formats/verity on a disk image, `veritysetup verify` on a block device) and the
// signed digests; only then
// do the names, the GUIDs derived from the root hash and the trial bits (tries 1, priority 2
// over the running slot's 1) go onto both GPT copies in one write.
import { constants, createReadStream } from 'node:fs';
import { open, stat, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { run } from '../common/index.ts';
import {
  isFormatError,
  type PartitionEntryEdit,
  SECTOR,
  verifyVerity,
  writePartitionEntries,
} from '../formats/index.ts';
import { EMPTY_SLOT } from '../platform/index.ts';
import type { BundleMember } from './bundle-file.ts';
import type { VerifiedBundle } from './bundle-verify.ts';
import {
  type DiskSlot,
  type DiskSlots,
  encodeSlot,
  other,
  readDiskSlots,
  type SlotName,
  slotUuids,
} from './disk-slots.ts';
import { UpdateError } from './update-error.ts';

const offsetOf = (p: DiskSlot['data']): number => Number(p.firstLba) * SECTOR;
const sizeOf = (p: DiskSlot['data']): number => Number(p.sizeBytes);

/** The slot an update may write: never the running one, never while a trial is undecided. */
export function inactiveSlot(slots: DiskSlots, running: SlotName): SlotName {
  const r = slots[running];
  if (!r.state.successful)
    throw new UpdateError(
      'E_SLOT_RUNNING',
      `Slot ${running} is running as a trial that has not passed its health gate; slot ${other(running)} is the last known good one and is not overwritten`,
    );
  return other(running);
}

async function copyRange(
  from: string,
  src: BundleMember,
  to: string,
  at: number,
  clearTo: number,
  onBytes: (n: number) => void,
  signal?: AbortSignal,
): Promise<void> {
  const fh = await open(to, constants.O_WRONLY);
  try {
    let pos = at;
    for await (const c of createReadStream(from, {
      start: src.offset,
      end: src.offset + src.size - 1,
      highWaterMark: 4 << 20,
    })) {
      const b = c as Buffer;
      stopIfCancelled(signal);
      await fh.write(b, 0, b.length, pos);
      pos += b.length;
      onBytes(b.length);
    }
    // Nothing of an older content may follow (the verity-sig reader wants NUL padding only).
    const zero = Buffer.alloc(1 << 20);
    while (pos < clearTo) {
      const n = Math.min(zero.length, clearTo - pos);
      await fh.write(zero, 0, n, pos);
      pos += n;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** A cancelled install stops between two writes; the slot is still the empty one of step 1. */
function stopIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true)
    throw new UpdateError(
      'E_UPDATE_CANCELLED',
      'The update was cancelled while the inactive slot was being written; the slot is left empty',
    );
}

async function sha256Of(path: string, start: number, size: number): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path, { start, end: start + size - 1 })) h.update(c as Buffer);
  return h.digest('hex');
}

/** Verifies the written slot against the signed root hash, reading every block back. */
async function verifyWritten(disk: string, slot: DiskSlot, b: VerifiedBundle): Promise<void> {
  const root = b.manifest.coreos.rootHash;
  const isFile = (await stat(disk)).isFile();
  try {
    if (isFile)
      await verifyVerity(disk, disk, root, {
        dataOffset: offsetOf(slot.data),
        hashOffset: offsetOf(slot.verity),
      });
    else {
      // A block device (in the guest): the partitions' own nodes, checked by cryptsetup. They
      // have page caches of their own: drop them so the read is of what reached the disk.
      await writeFile('/proc/sys/vm/drop_caches', '3').catch(() => {});
      const node = (p: DiskSlot['data']) => (/\d$/.test(disk) ? `${disk}p${p.index}` : `${disk}${p.index}`);
      await run('veritysetup', ['verify', node(slot.data), node(slot.verity), root], { timeout: 600_000 });
    }
  } catch (e) {
    throw new UpdateError(
      'E_BUNDLE_VERITY',
      `Slot ${slot.name} as written fails its verity check: ${(e as Error).message}`,
      {
        cause: e,
        details: isFormatError(e) ? { ...(e.details ?? {}) } : {},
      },
    );
  }
  const [, , sig, stage2] = b.layout.members;
  const readBack: [string, DiskSlot['data'] | null, number, string][] = [
    ['coreos.verity-sig', slot.sig, sig.size, b.manifest.coreos.veritySig.sha256],
    ['stage2', slot.boot, stage2.size, b.manifest.stage2.sha256],
  ];
  for (const [member, p, size, want] of readBack)
    if (p !== null && (await sha256Of(disk, offsetOf(p), size)) !== want)
      throw new UpdateError(
        'E_BUNDLE_DIGEST',
        `Slot ${slot.name}'s ${member} as written differs from the bundle's`,
        {
          details: { member },
        },
      );
}

export interface InstallResult {
  slot: SlotName;
  version: string;
  rootHash: string;
  bytes: number;
}

/**
 * Writes `bundle` (already verified, at `bundlePath`) into the inactive slot of `disk` and
 * arms it for one trial boot. `running` is the slot the machine booted.
 */
export async function installToSlot(
  disk: string,
  bundlePath: string,
  bundle: VerifiedBundle,
  o: {
    running: SlotName;
    onProgress?: (done: number, total: number) => void;
    /** `mway update --cancel`: stops the write; the slot stays empty (step 1's state). */
    signal?: AbortSignal;
  },
): Promise<InstallResult> {
  const slots = await readDiskSlots(disk);
  const target = inactiveSlot(slots, o.running);
  const t = slots[target];
  const m = bundle.manifest;
  const [erofs, verity, sig, stage2] = bundle.layout.members;
  for (const [what, member, p] of [
    ['CoreOS', erofs, t.data],
    ['its verity tree', verity, t.verity],
    ['its verity signature', sig, t.sig],
    ['its stage 2', stage2, t.boot],
  ] as const)
    if (p !== null && member.size > sizeOf(p))
      throw new UpdateError(
        'E_BUNDLE_SPACE',
        `${what} is ${member.size} bytes; slot ${target}'s partition ${p.index} holds ${sizeOf(p)}`,
        { details: { partition: p.index } },
      );
  const r = slots[o.running];
  // clear-inactive: from here until the last GPT write, the slot is empty to every reader.
  writePartitionEntries(disk, [
    {
      index: t.statePartition.index,
      attributes: encodeSlot(t.statePartition.attributes, { priority: 0, tries: 0, successful: false }),
    },
    { index: t.data.index, name: EMPTY_SLOT },
    { index: t.verity.index, name: EMPTY_SLOT },
    { index: t.sig.index, name: EMPTY_SLOT },
  ]);
  const total = erofs.size + verity.size + sig.size + (t.boot === null ? 0 : stage2.size);
  let done = 0;
  const tick = (n: number) => {
    done += n;
    o.onProgress?.(done, total);
  };
  const sg = o.signal;
  await copyRange(bundlePath, erofs, disk, offsetOf(t.data), offsetOf(t.data) + erofs.size, tick, sg);
  await copyRange(bundlePath, verity, disk, offsetOf(t.verity), offsetOf(t.verity) + verity.size, tick, sg);
  await copyRange(bundlePath, sig, disk, offsetOf(t.sig), offsetOf(t.sig) + sizeOf(t.sig), tick, sg);
  // Stage 1 reads only the bytes the signed descriptor names: what follows them needs no clearing.
  if (t.boot !== null)
    await copyRange(bundlePath, stage2, disk, offsetOf(t.boot), offsetOf(t.boot) + stage2.size, tick, sg);
  await verifyWritten(disk, t, bundle);
  // Cancelled during the read-back: the slot is not armed.
  stopIfCancelled(sg);
  const label = `${m.name}_${m.version}`;
  const ids = slotUuids(m.coreos.rootHash);
  const edits: PartitionEntryEdit[] = [
    { index: t.data.index, name: label, uniqueGuid: ids.data },
    { index: t.verity.index, name: `${label}.verity`, uniqueGuid: ids.hash },
    { index: t.sig.index, name: `${label}.verity-sig` },
  ];
  // upgrade-to-inactive: the new slot gets one try above the running one, which stays the fallback.
  const armed = (p: DiskSlot['statePartition'], s: Parameters<typeof encodeSlot>[1]) => ({
    index: p.index,
    attributes: encodeSlot(p.attributes, s),
  });
  const stateEdits = [
    armed(r.statePartition, { priority: 1, tries: 0, successful: true }),
    armed(t.statePartition, { priority: 2, tries: 1, successful: false }),
  ];
  // One partition may be both a name edit and a state edit (today's layout): merge them.
  const merged = new Map<number, PartitionEntryEdit>();
  for (const e of [...edits, ...stateEdits])
    merged.set(e.index, { ...(merged.get(e.index) ?? { index: e.index }), ...e });
  writePartitionEntries(disk, [...merged.values()]);
  return { slot: target, version: m.version, rootHash: m.coreos.rootHash, bytes: total };
}
