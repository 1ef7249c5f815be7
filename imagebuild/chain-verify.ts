// `mway-image verify`'s boot chain checks (doc/disk-layout.md "What verify checks"):
//   stage1            the ESP's BOOTX64.EFI is Authenticode-signed (under --sb-cert when given,
//                     with sbverify), and is exactly --unsigned-stage1 plus a certificate table;
//   stage1-config     the stage-1 config in its initramfs is well formed and signed (type
//                     stage1) by a user certificate under the anchors;
//   stage2:a / :b     each populated slot's descriptor verifies under the keys stage 1 pins,
//                     at or above its rollback floor, with every part's digest; the kernel
//                     carries a kexec signature (under --kexec-cert when given);
//   cmdline           slot a's descriptor names the root hash CoreOS A's partition UUIDs spell.
import { readFile } from 'node:fs/promises';
import {
  BootchainError,
  sbVerify,
  signedMatchesUnsigned,
  type Stage1Config,
  verifyStage1Config,
  verifyStage2,
  readSlots,
  BOOT_PARTITION_TYPE,
  SLOTS,
  HEADER_SIZE,
  STAGE2_HEADER,
  STAGE2_MAGIC,
} from '../bootchain/index.ts';
import { DPS, type GptPartition } from '../formats/index.ts';
import type { Certificate, Crl } from '../keys/index.ts';
import { readStage1, readStage2 } from './chain-read.ts';
import { ImageError } from './image-error.ts';

/** What a disk's chain is checked under (`mway-image verify`'s --trust, --crl, --sb-cert, …). */
export interface ChainTrust {
  anchors: readonly Certificate[];
  crls?: readonly Crl[];
  /** The user's Secure Boot db certificate: stage 1's Authenticode signature is checked under it. */
  sbCert?: string;
  /** The vendor's kexec certificate: each stage-2 kernel's Authenticode signature is checked under it. */
  kexecCert?: string;
  /** The unsigned stage-1 UKI the build wrote: the ESP's must be exactly it plus a certificate table. */
  unsignedStage1?: string;
}

type Attempt = (check: string, p: GptPartition | undefined, fn: () => Promise<string>) => Promise<void>;

export async function verifyChain(
  disk: string,
  partitions: readonly GptPartition[],
  work: string,
  o: ChainTrust & { attempt: Attempt; rootHash: string | undefined },
): Promise<{ certsRootHash: string | null }> {
  const esp = partitions.find((p) => p.type === DPS.esp);
  const s1 = esp === undefined ? null : await readStage1(disk, esp, work);
  let config: Stage1Config | null = null;
  await o.attempt('stage1', esp, async () => {
    if (s1 === null) throw new ImageError('E_CMDLINE_MISSING', 'no EFI/BOOT/BOOTX64.EFI on the ESP');
    if (s1.signers.length === 0)
      throw new BootchainError(
        'E_SB_NOT_SIGNED',
        'stage 1 (EFI/BOOT/BOOTX64.EFI) has no Authenticode signature',
      );
    if (o.sbCert !== undefined) await sbVerify(s1.path, o.sbCert);
    if (
      o.unsignedStage1 !== undefined &&
      !signedMatchesUnsigned(s1.bytes, new Uint8Array(await readFile(o.unsignedStage1)))
    )
      throw new BootchainError(
        'E_SB_UNSIGNED_MISMATCH',
        `stage 1 is not ${o.unsignedStage1} plus a certificate table`,
      );
    return `stage 1 signed for Secure Boot by ${s1.signers.join(', ')}${o.sbCert === undefined ? ' (not checked: no --sb-cert)' : ', verified under --sb-cert'}${o.unsignedStage1 === undefined ? '' : ', equal to the unsigned build plus its signature'}`;
  });
  await o.attempt('stage1-config', esp, async () => {
    if (s1?.config == null || s1.signature === null)
      throw new ImageError('E_CMDLINE_MISSING', 'stage 1 carries no stage-1 config and signature');
    if (s1.decoded === null)
      throw new BootchainError('E_STAGE1_CONFIG', 'the stage-1 config does not decode');
    const signer = verifyStage1Config(s1.config, s1.signature, { anchors: o.anchors, crls: o.crls ?? [] });
    config = s1.decoded;
    return `stage-1 config signed by ${signer.role} ${signer.subject}: pins ${config.keys.map((k) => k.label).join(', ')}, rollback floor ${config.rollbackFloor}`;
  });
  const slots = await readSlots(disk, BOOT_PARTITION_TYPE).catch(
    () => ({}) as Awaited<ReturnType<typeof readSlots>>,
  );
  for (const slot of SLOTS) {
    const s = slots[slot];
    if (s === undefined) continue;
    if (slot === 'b' && s.priority === 0 && !s.successful && s.tries === 0) continue; // the empty slot
    const r = await readStage2(disk, slot, s.partition, s, work);
    await o.attempt(`stage2:${slot}`, s.partition, async () => {
      const c = config as Stage1Config | null;
      if (c === null)
        throw new ImageError('E_CMDLINE_MISSING', 'no verified stage-1 config to check stage 2 against');
      const v = verifyStage2(r.image, {
        pinned: c.keys,
        rollbackFloor: c.rollbackFloor,
        partitionSize: Number(s.partition.sizeBytes),
        at: `slot ${slot}`,
      });
      if (r.kexecSigners.length === 0)
        throw new BootchainError(
          'E_SB_NOT_SIGNED',
          `slot ${slot}: the stage-2 kernel has no kexec (Authenticode) signature`,
        );
      if (o.kexecCert !== undefined) {
        const { writeFile } = await import('node:fs/promises');
        const k = `${work}/verify-kernel-${slot}`;
        await writeFile(k, v.kernel);
        await sbVerify(k, o.kexecCert);
      }
      const d = v.descriptor;
      return `slot ${slot}: stage 2 ${d.name} ${d.version} (rollback ${d.rollbackIndex}) signed by pinned vendor key ${v.signer.label}; kernel kexec-signed by ${r.kexecSigners.join(', ')}`;
    });
    if (slot === 'a')
      await o.attempt('cmdline', s.partition, async () => {
        // The raw field, so a descriptor that no longer decodes still says which root it names.
        if (
          r.image.length < HEADER_SIZE ||
          Buffer.from(r.image.subarray(0, 8)).toString('latin1') !== STAGE2_MAGIC
        )
          throw new ImageError('E_CMDLINE_MISSING', 'slot a has no stage-2 descriptor');
        const named = Buffer.from(STAGE2_HEADER.raw(r.image, 'rootHash')).toString('hex');
        if (named !== o.rootHash)
          throw new ImageError(
            'E_CMDLINE_ROOT',
            `slot a's descriptor names CoreOS root hash ${named}, the partition UUIDs spell ${o.rootHash ?? '(none)'}`,
          );
        return `slot a's command line names CoreOS ${named}`;
      });
  }
  return { certsRootHash: (config as Stage1Config | null)?.certsRootHash ?? null };
}
