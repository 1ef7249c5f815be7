// `mway-image verify DISK --trust ANCHOR…`: the offline check of a MilkyWayLinux disk. The
// GPT (both copies, CRCs, the protective MBR), the partitions against the layout table
// (disk-layout-check.ts), CoreOS A's whole verity tree against the root hash its DPS
// partition UUIDs spell, the boot chain (chain-verify.ts: stage 1's Secure Boot signature and
// signed config, each slot's ML-DSA-signed stage 2, slot a's descriptor naming that same hash),
// the vendor's 'coreos' signature, the certificate partition's verity tree against the root
// hash the verified stage-1 config pins, the user's
// secure config and every preinstalled layer (signatures and every verity block), all
// under the anchors given here — never under the ones the disk carries.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  checkGptRedundancy,
  FormatError,
  type GptPartition,
  readGpt,
  verifyVerity,
} from '../formats/index.ts';
import { verifyLayer } from '../layers/index.ts';
import { type PartitionRole, SECURE_CONFIG_FILE } from '../platform/index.ts';
import { type ChainTrust, verifyChain } from './chain-verify.ts';
import { matchLayout } from './disk-layout-check.ts';
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
import { ImageError } from './image-error.ts';
import { verifySecureConfig } from './secure-config.ts';
import { decodeVeritySig, verifyVeritySig } from './verity-sig.ts';

export interface VerifyCheck {
  /** What was checked: gpt, cmdline, coreos-verity, coreos-signature, certificates-verity, secure-config, layer:NAME. */
  check: string;
  ok: boolean;
  /** For a failed check: the stable code of what failed (doc/errors-*.md). */
  code?: string;
  /** GPT partition (index and name) the check is about. */
  partition?: { index: number; name: string };
  message: string;
  /** For verity failures: the area (data/hash) and block that differ. */
  details?: Record<string, unknown>;
}

export interface DiskVerification {
  disk: string;
  ok: boolean;
  checks: VerifyCheck[];
}

function errInfo(e: unknown): { code: string; message: string; details?: Record<string, unknown> } {
  const err = e as { message?: string; code?: string; details?: Record<string, unknown> };
  // A failure without a code is a bug in a check, and says so rather than passing for a finding.
  const code = typeof err.code === 'string' ? err.code : 'E_INTERNAL';
  return {
    code,
    message: `${code}: ${err.message ?? String(e)}`,
    ...(err.details === undefined ? {} : { details: { code, ...err.details } }),
  };
}

/** Checks everything on `disk` under `anchors`; never throws for a failed check, only for unreadable input. */
export async function verifyDisk(disk: string, o: ChainTrust): Promise<DiskVerification> {
  const checks: VerifyCheck[] = [];
  const crls = o.crls ?? [];
  const add = (c: VerifyCheck) => checks.push(c);
  const at = (p: GptPartition) => ({ index: p.index, name: p.name });
  const attempt = async (check: string, p: GptPartition | undefined, fn: () => Promise<string>) => {
    try {
      add({ check, ok: true, ...(p === undefined ? {} : { partition: at(p) }), message: await fn() });
    } catch (e) {
      add({ check, ok: false, ...(p === undefined ? {} : { partition: at(p) }), ...errInfo(e) });
    }
  };

  let gpt: Awaited<ReturnType<typeof readGpt>>;
  try {
    gpt = await readGpt(disk);
  } catch (e) {
    add({ check: 'gpt', ok: false, ...errInfo(e) });
    return { disk, ok: false, checks };
  }
  // Both copies and the protective MBR, each its own check: readGpt took whichever copy was
  // good, but a disk with one damaged, missing or disagreeing copy is not the disk we built.
  const copies = checkGptRedundancy(disk);
  const fromCopy = (check: string, e: ImageError | Error | undefined, okMessage: string) =>
    add(e === undefined ? { check, ok: true, message: okMessage } : { check, ok: false, ...errInfo(e) });
  fromCopy(
    'gpt',
    copies.primary === undefined
      ? undefined
      : new FormatError(
          copies.primary.code,
          `primary GPT is damaged (the backup was read): ${copies.primary.message}`,
        ),
    `GPT ${gpt.diskGuid}: ${gpt.partitions.length} partitions, primary header and entry CRCs good`,
  );
  fromCopy('gpt-backup', copies.backup, 'backup GPT header and entries good, identical to the primary');
  fromCopy('protective-mbr', copies.protectiveMbr, 'protective MBR covers the disk');
  // The layout next: every other check finds its partition by the role this assigns.
  const layout = matchLayout(gpt.partitions.map((p) => ({ ...p, filesystem: sniffFilesystem(disk, p) })));
  for (const p of layout.problems)
    add({
      check: 'layout',
      ok: false,
      code: p.code,
      ...(p.partition === undefined ? {} : { partition: p.partition }),
      message: `${p.code}: ${p.message}`,
      details: { code: p.code, ...(p.role === undefined ? {} : { role: p.role }) },
    });
  if (layout.problems.length === 0)
    add({
      check: 'layout',
      ok: true,
      message: `${gpt.partitions.length} partitions as the MilkyWayLinux layout has them: names, types, attributes, file systems`,
    });
  const byRole = (r: PartitionRole) => gpt.partitions[layout.roles.indexOf(r)];

  await withWork(async (work) => {
    const a = byRole('coreos-a');
    const av = byRole('coreos-a-verity');
    const as = byRole('coreos-a-verity-sig');
    const rootHash = a !== undefined && av !== undefined ? rootHashFromUuids(a, av) : undefined;
    // The chain (chain-verify.ts) owns both root hashes: CoreOS's in slot a's stage-2 descriptor,
    // the certificates' in the signed stage-1 config. Nothing here reads a command line.
    const chain = await verifyChain(disk, gpt.partitions, work, { ...o, attempt, rootHash });

    if (a !== undefined && av !== undefined && rootHash !== undefined) {
      await attempt('coreos-verity', a, async () => {
        const data = await extractPartition(disk, a, join(work, 'coreos.img'));
        try {
          const sb = await verifyVerity(data, disk, rootHash, { hashOffset: part.offset(av) });
          return `${a.name}: ${sb.dataBlocks} blocks match root hash ${rootHash}`;
        } catch (e) {
          const d = (e as { details?: { area?: string; block?: number } }).details;
          if (d?.area === 'hash')
            throw Object.assign(e as Error, {
              message: `${(e as Error).message} (hash partition ${av.index} ${av.name})`,
            });
          if (d?.area === 'data')
            throw Object.assign(e as Error, {
              message: `${(e as Error).message} (partition ${a.index} ${a.name}, byte ${part.offset(a) + (d.block ?? 0) * 4096} of the disk)`,
            });
          throw e;
        }
      });
    }
    if (as !== undefined && rootHash !== undefined) {
      await attempt('coreos-signature', as, async () => {
        const sig = decodeVeritySig(
          readRange(disk, part.offset(as), Math.min(part.size(as), 1 << 20)),
          `partition ${as.index} ${as.name}`,
        );
        const r = verifyVeritySig(sig, { rootHash, anchors: o.anchors, crls });
        return `CoreOS ${r.payload.name} ${r.payload.version} signed by ${r.signer.role} ${r.signer.subject} (${r.signer.fingerprint})`;
      });
    }

    const cp = byRole('certificates');
    if (cp !== undefined) {
      await attempt('certificates-verity', cp, async () => {
        const certsHash = chain.certsRootHash;
        if (certsHash === null)
          throw new ImageError(
            'E_CMDLINE_MISSING',
            'no verified stage-1 config names the certificate partition root hash',
          );
        const img = await extractPartition(disk, cp, join(work, 'certs.img'));
        const fsSize = erofsSize(readRange(disk, part.offset(cp), 4096));
        await verifyVerity(img, img, certsHash, { hashOffset: fsSize });
        await extractErofs(img, join(work, 'certs'));
        const files = (await readdir(join(work, 'certs'))).sort();
        return `certificates match root hash ${certsHash}: ${files.join(', ')}`;
      });
    }

    const sc = byRole('secure-config');
    if (sc !== undefined) {
      await attempt('secure-config', sc, async () => {
        const img = await extractPartition(
          disk,
          sc,
          join(work, 'sc.img'),
          erofsSize(readRange(disk, part.offset(sc), 4096)),
        );
        const bytes = await readSecureConfigFile(img, join(work, 'sc'));
        const r = verifySecureConfig(bytes, { anchors: o.anchors, crls });
        return `secure config signed by ${r.signer.role} ${r.signer.subject}`;
      });
    }

    const lp = byRole('layers');
    if (lp !== undefined) {
      let files: string[] = [];
      const dir = join(work, 'layers');
      await attempt('layers', lp, async () => {
        const img = await extractPartition(disk, lp, join(work, 'layers.img'));
        await extractExt4(img, dir);
        files = (await readdir(dir)).filter((f) => f.endsWith('.mwl')).sort();
        return `${files.length} layer file(s): ${files.join(', ')}`;
      });
      for (const f of files) {
        await attempt(`layer:${f.replace(/\.mwl$/, '')}`, lp, async () => {
          const v = await verifyLayer(join(dir, f), { anchors: o.anchors, crls });
          return `${f}: ${v.manifest.name} ${v.manifest.version} signed by ${v.signers.map((s) => `${s.role} ${s.subject}`).join(', ')}, every block matches`;
        });
      }
    }
  });
  return { disk, ok: checks.every((c) => c.ok), checks };
}

/**
 * The secure config file out of its erofs partition. The file is signed, the file system around
 * it is not: a damaged image that fsck.erofs cannot extract, or one that lacks the file, is
 * E_SECURE_CONFIG_FS rather than a raw ENOENT.
 */
async function readSecureConfigFile(img: string, dir: string): Promise<Uint8Array> {
  try {
    await extractErofs(img, dir);
    return new Uint8Array(await readFile(join(dir, SECURE_CONFIG_FILE)));
  } catch (e) {
    throw new ImageError(
      'E_SECURE_CONFIG_FS',
      `the secure-config partition holds no readable ${SECURE_CONFIG_FILE}: ${(e as Error).message}`,
      { cause: e },
    );
  }
}
