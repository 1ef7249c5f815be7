// Reads the boot chain back from a disk, offline and without trust (doc/boot.md): stage 1 from
// the ESP (its Authenticode signers, the stage-1 config and its signature out of the UKI's
// initramfs) and stage 2 from boot-a / boot-b (descriptor fields, the kernel's kexec signer).
// disk-verify.ts checks what this reads; disk-inspect.ts shows it.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { zstdDecompressSync } from 'node:zlib';
import {
  decodeSignedHeader,
  decodeStage1Config,
  type SlotName,
  type SlotState,
  SLOTS,
  type Stage1Config,
  type Stage2Descriptor,
  sbSigners,
} from '../bootchain/index.ts';
import { run } from '../common/index.ts';
import { type GptPartition, readCpio } from '../formats/index.ts';
import type { Signature } from '../keys/index.ts';
import { extractPartition, peSection, readRange } from './disk-read.ts';
import { STAGE1_CONFIG_PATH, STAGE1_SIGNATURE_PATH } from './stage1-init.ts';

export interface Stage1Read {
  /** EFI/BOOT/BOOTX64.EFI copied out of the ESP. */
  path: string;
  bytes: Uint8Array;
  /** Subjects sbverify --list names (empty: unsigned). */
  signers: string[];
  config: Uint8Array | null;
  decoded: Stage1Config | null;
  signature: Signature | null;
}

/** Stage 1 from the ESP, or null when the ESP has no EFI/BOOT/BOOTX64.EFI. */
export async function readStage1(disk: string, esp: GptPartition, work: string): Promise<Stage1Read | null> {
  const img = await extractPartition(disk, esp, join(work, 'esp.img'));
  const path = join(work, 'BOOTX64.EFI');
  const r = await run('mcopy', ['-n', '-i', img, '::EFI/BOOT/BOOTX64.EFI', path], {
    timeout: 60_000,
    reject: false,
    env: { MTOOLS_SKIP_CHECK: '1' },
  });
  if (r.exitCode !== 0) return null;
  const bytes = new Uint8Array(await readFile(path));
  let config: Uint8Array | null = null;
  let signature: Signature | null = null;
  const initrd = peSection(bytes, '.initrd');
  if (initrd !== null) {
    try {
      for (const m of readCpio(zstdDecompressSync(initrd))) {
        if (`/${m.path}` === STAGE1_CONFIG_PATH) config = m.data;
        if (`/${m.path}` === STAGE1_SIGNATURE_PATH)
          signature = JSON.parse(Buffer.from(m.data).toString('utf8')) as Signature;
      }
    } catch {
      // Not a stage-1 initramfs (a plain UKI): no config.
    }
  }
  let decoded: Stage1Config | null = null;
  try {
    decoded = config === null ? null : decodeStage1Config(config);
  } catch {
    decoded = null;
  }
  return { path, bytes, signers: await sbSigners(path), config, decoded, signature };
}

export interface Stage2Read {
  slot: SlotName;
  partition: GptPartition;
  state: SlotState;
  /** The partition's bytes up to the end of the parts the descriptor names (or its first 12 KiB). */
  image: Uint8Array;
  descriptor: Stage2Descriptor | null;
  /** The stage-2 kernel's Authenticode signers (sbverify --list). */
  kexecSigners: string[];
}

/** One boot slot's stage 2 (fields decoded without checking the signature). */
export async function readStage2(
  disk: string,
  slot: SlotName,
  p: GptPartition,
  state: SlotState,
  work: string,
): Promise<Stage2Read> {
  const off = Number(p.firstLba) * 512;
  const size = Number(p.sizeBytes);
  let image = readRange(disk, off, Math.min(size, 12288));
  let descriptor: Stage2Descriptor | null = null;
  let kexecSigners: string[] = [];
  try {
    descriptor = decodeSignedHeader(image, size);
    image = readRange(disk, off, descriptor.initrd.offset + descriptor.initrd.size);
    const k = join(work, `stage2-${slot}-kernel`);
    await writeFile(
      k,
      image.subarray(descriptor.kernel.offset, descriptor.kernel.offset + descriptor.kernel.size),
    );
    kexecSigners = await sbSigners(k);
  } catch {
    descriptor = null;
  }
  return { slot, partition: p, state, image, descriptor, kexecSigners };
}

export { SLOTS };
