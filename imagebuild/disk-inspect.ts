// `mway-image inspect`: what a MilkyWayLinux disk holds, read offline and without trust —
// the GPT, each partition's role and file system, the CoreOS root hash (from the DPS
// partition UUIDs, slot a's stage-2 descriptor and the verity-sig), the signers the signatures
// name, the certificate partition's anchors and the preinstalled layers. disk-verify.ts
// checks all of it; inspect only reports.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BOOT_PARTITION_TYPE, readSlots } from '../bootchain/index.ts';
import { readGpt } from '../formats/index.ts';
import { parseCertificates, parseEnvelope } from '../keys/index.ts';
import { readLayer } from '../layers/index.ts';
import { PARTITION_TYPES, type PartitionRole, SECURE_CONFIG_FILE } from '../platform/index.ts';
import { readStage1, readStage2, SLOTS } from './chain-read.ts';
import { type LayoutProblem, matchLayout } from './disk-layout-check.ts';
import {
  erofsSize,
  extractErofs,
  extractExt4,
  extractPartition,
  part,
  readRange,
  rootHashFromUuids,
  sniffFilesystem,
  withWork,
} from './disk-read.ts';
import { decodeVeritySig } from './verity-sig.ts';

export interface InspectedPartition {
  index: number;
  name: string;
  role: PartitionRole | null;
  type: string;
  typeName: string | null;
  uuid: string;
  offset: number;
  sizeBytes: number;
  readOnly: boolean;
  filesystem: string | null;
}

export interface DiskInspection {
  disk: string;
  diskGuid: string;
  sizeBytes: number;
  usedBackupGpt: boolean;
  partitions: InspectedPartition[];
  /** Where the GPT differs from the MilkyWayLinux layout (doc/disk-layout.md); empty when it matches. */
  layout: LayoutProblem[];
  cmdline: string | null;
  coreos: {
    label: string;
    rootHash: string;
    cmdlineRootHash: string | null;
    signature: { rootHash: string; certificateFingerprint: string; signer: string | null } | null;
  } | null;
  certificates: {
    rootHash: string | null;
    files: string[];
    anchors: { subject: string; role: string; fingerprint: string }[];
  } | null;
  /** The boot chain's links as the disk holds them (doc/boot.md); null without an ESP. */
  chain: {
    stage1: {
      /** Authenticode signers of EFI/BOOT/BOOTX64.EFI (sbverify --list); empty when unsigned. */
      secureBootSigners: string[];
      config: {
        signer: string | null;
        rollbackFloor: string;
        certsRootHash: string;
        pinned: { label: string; algorithm: string; keyId: string; certFingerprint: string }[];
      } | null;
    } | null;
    slots: {
      slot: string;
      partition: string;
      priority: number;
      tries: number;
      successful: boolean;
      stage2: {
        name: string;
        version: string;
        rollbackIndex: string;
        /** The pinned key's label the descriptor names by key id, or the key id. */
        signer: string;
        kexecSigners: string[];
      } | null;
    }[];
  } | null;
  secureConfig: { signer: string | null; payload: unknown } | null;
  layers: { file: string; name: string; version: string; signers: string[]; sizeBytes: number }[];
}

/** Subject of the certificate a signature names (by fingerprint, from its chain), or its fingerprint. */
function signerSubject(sig: { signer: string; chain: string[] } | undefined): string | null {
  if (sig === undefined) return null;
  for (const b64 of sig.chain) {
    const c = parseCertificates(new Uint8Array(Buffer.from(b64, 'base64')))[0];
    if (c?.fingerprint === sig.signer) return c.subject;
  }
  return sig.signer;
}

/** Reads everything `inspect` shows. Nothing is trusted; disk-verify.ts checks it. */
export async function inspectDisk(disk: string): Promise<DiskInspection> {
  const gpt = await readGpt(disk, { typeNames: PARTITION_TYPES });
  const filesystems = gpt.partitions.map((p) => sniffFilesystem(disk, p));
  const layout = matchLayout(gpt.partitions.map((p, i) => ({ ...p, filesystem: filesystems[i] ?? null })));
  const partitions: InspectedPartition[] = gpt.partitions.map((p, i) => ({
    index: p.index,
    name: p.name,
    role: layout.roles[i] ?? null,
    type: p.type,
    typeName: p.typeName ?? null,
    uuid: p.uuid,
    offset: part.offset(p),
    sizeBytes: part.size(p),
    readOnly: p.flags.readOnly,
    filesystem: filesystems[i] ?? null,
  }));
  const byRole = (r: PartitionRole) => gpt.partitions.find((_, i) => partitions[i]?.role === r);
  return withWork(async (work) => {
    // With the boot chain the command line and the CoreOS root hash are slot a's stage-2
    // descriptor's, the certificates' root hash is the stage-1 config's (chain-read.ts).
    const esp = byRole('esp');
    const s1 = esp === undefined ? null : await readStage1(disk, esp, work);
    const slots = await readSlots(disk, BOOT_PARTITION_TYPE).catch(
      () => ({}) as Awaited<ReturnType<typeof readSlots>>,
    );
    const slotA = slots.a;
    const s2 = slotA === undefined ? null : await readStage2(disk, 'a', slotA.partition, slotA, work);
    const pins = s1?.decoded?.keys ?? [];
    const chain: DiskInspection['chain'] =
      esp === undefined
        ? null
        : {
            stage1:
              s1 === null
                ? null
                : {
                    secureBootSigners: s1.signers,
                    config:
                      s1.decoded === null
                        ? null
                        : {
                            signer: signerSubject(s1.signature ?? undefined),
                            rollbackFloor: String(s1.decoded.rollbackFloor),
                            certsRootHash: s1.decoded.certsRootHash,
                            pinned: s1.decoded.keys.map((k) => ({
                              label: k.label,
                              algorithm: `ml-dsa-${k.algorithm}`,
                              keyId: k.keyId,
                              certFingerprint: k.certFingerprint,
                            })),
                          },
                  },
            slots: [],
          };
    for (const name of SLOTS) {
      const st = slots[name];
      if (st === undefined || chain === null) continue;
      const r = name === 'a' && s2 !== null ? s2 : await readStage2(disk, name, st.partition, st, work);
      const d = r.descriptor;
      chain.slots.push({
        slot: name,
        partition: st.partition.name,
        priority: st.priority,
        tries: st.tries,
        successful: st.successful,
        stage2:
          d === null
            ? null
            : {
                name: d.name,
                version: d.version,
                rollbackIndex: String(d.rollbackIndex),
                signer: pins.find((k) => k.keyId === d.keyId)?.label ?? d.keyId,
                kexecSigners: r.kexecSigners,
              },
      });
    }
    const cmdline = s2?.descriptor?.cmdline ?? null;
    const a = byRole('coreos-a');
    const av = byRole('coreos-a-verity');
    const as = byRole('coreos-a-verity-sig');
    let coreos: DiskInspection['coreos'] = null;
    if (a !== undefined && av !== undefined) {
      let signature: NonNullable<DiskInspection['coreos']>['signature'] = null;
      if (as !== undefined) {
        try {
          const s = decodeVeritySig(readRange(disk, part.offset(as), Math.min(part.size(as), 1 << 20)));
          const env = parseEnvelope(new Uint8Array(Buffer.from(s.signature, 'base64')));
          signature = {
            rootHash: s.rootHash,
            certificateFingerprint: s.certificateFingerprint,
            signer: signerSubject(env.signatures[0]),
          };
        } catch {
          signature = null;
        }
      }
      coreos = {
        label: a.name,
        rootHash: rootHashFromUuids(a, av),
        cmdlineRootHash: s2?.descriptor?.rootHash ?? null,
        signature,
      };
    }
    let certificates: DiskInspection['certificates'] = null;
    const cp = byRole('certificates');
    if (cp !== undefined) {
      const img = join(work, 'certs.img');
      const size = erofsSize(readRange(disk, part.offset(cp), 4096));
      await extractPartition(disk, cp, img, size);
      const dir = join(work, 'certs');
      await extractErofs(img, dir);
      const files = (await readdir(dir)).sort();
      const anchors = [];
      for (const f of files.filter((f) => f.endsWith('.crt') || f.endsWith('.pem')))
        for (const c of parseCertificates(await readFile(join(dir, f))))
          anchors.push({ subject: c.subject, role: c.role, fingerprint: c.fingerprint });
      certificates = { rootHash: s1?.decoded?.certsRootHash ?? null, files, anchors };
    }
    let secureConfig: DiskInspection['secureConfig'] = null;
    const sc = byRole('secure-config');
    if (sc !== undefined) {
      const img = await extractPartition(
        disk,
        sc,
        join(work, 'sc.img'),
        erofsSize(readRange(disk, part.offset(sc), 4096)),
      );
      await extractErofs(img, join(work, 'sc'));
      const env = parseEnvelope(new Uint8Array(await readFile(join(work, 'sc', SECURE_CONFIG_FILE))));
      secureConfig = { signer: signerSubject(env.signatures[0]), payload: env.payload };
    }
    const layers: DiskInspection['layers'] = [];
    const lp = byRole('layers');
    if (lp !== undefined) {
      const img = await extractPartition(disk, lp, join(work, 'layers.img'));
      const dir = join(work, 'layers');
      await extractExt4(img, dir);
      for (const f of (await readdir(dir)).filter((f) => f.endsWith('.mwl')).sort()) {
        const l = await readLayer(join(dir, f));
        const { size } = await stat(join(dir, f));
        layers.push({
          file: f,
          name: l.manifest.name,
          version: l.manifest.version,
          signers: l.signatures.map((s) => signerSubject(s) ?? s.signer),
          sizeBytes: size,
        });
      }
    }
    return {
      disk,
      diskGuid: gpt.diskGuid,
      sizeBytes: Number(gpt.sizeBytes),
      usedBackupGpt: gpt.usedBackup,
      partitions,
      layout: layout.problems,
      cmdline,
      chain,
      coreos,
      certificates,
      secureConfig,
      layers,
    };
  });
}
