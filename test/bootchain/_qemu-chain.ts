// Shared by the boot-chain QEMU tests: one built disk (snakeoil Secure Boot keys, so Debian's
// pre-enrolled OVMF_VARS_4M.snakeoil.fd trusts it), copies of it with one link changed, and a
// boot that collects the console and stops at a line. At most two guests run at once.
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BOOT_PARTITION_TYPE,
  readSlots,
  signStage2,
  type Stage2Input,
  verifyStage2,
} from '../../bootchain/index.ts';
import { decodeStage1Config } from '../../bootchain/index.ts';
import { run } from '../../common/exec.ts';
import { type BuildResult, buildImage } from '../../imagebuild/build-image.ts';
import { readStage1 } from '../../imagebuild/chain-read.ts';
import { DEFAULT_SPEC, loadImageSpec } from '../../imagebuild/image-spec.ts';
import { type QemuRun, runQemu } from '../../imagebuild/qemu-run.ts';
import { readCertificates, readPrivateKey } from '../../keys/index.ts';

export const BOOT_MS = 15 * 60_000;

let built: Promise<BuildResult> | undefined;
/** The default image with `bootchain.secureBoot: snakeoil`, built once per test process. */
export function chainDisk(dir: string, secureBoot: 'snakeoil' | 'keys' = 'snakeoil'): Promise<BuildResult> {
  built ??= (async () => {
    const spec = await loadImageSpec(DEFAULT_SPEC);
    return buildImage({
      spec: { ...spec, bootchain: { ...spec.bootchain, secureBoot } },
      outDir: dir,
      sourceDateEpoch: 1_700_000_000,
    });
  })();
  return built;
}

/** A sparse copy of `disk` to change. */
export async function copyDisk(disk: string, dir: string, name: string): Promise<string> {
  const path = join(dir, `${name}.img`);
  await run('cp', ['--sparse=always', disk, path], { timeout: 300_000 });
  return path;
}

export async function writeAt(path: string, offset: number, bytes: Uint8Array): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.write(bytes, 0, bytes.length, offset);
  } finally {
    await fh.close();
  }
}

export async function flipAt(path: string, offset: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, offset);
    b[0] = (b[0] as number) ^ 0x01;
    await fh.write(b, 0, 1, offset);
  } finally {
    await fh.close();
  }
}

/** Slot a's partition offset and its verified stage 2 (under the stage-1 config on the disk). */
export async function slotA(disk: string, work: string) {
  const slots = await readSlots(disk, BOOT_PARTITION_TYPE);
  const a = slots.a;
  if (a === undefined) throw new Error('no boot-a');
  const { readGpt } = await import('../../formats/index.ts');
  const esp = (await readGpt(disk)).partitions.find((p) => p.name === 'esp');
  if (esp === undefined) throw new Error('no esp');
  const s1 = await readStage1(disk, esp, work);
  if (s1?.config == null) throw new Error('no stage-1 config');
  const cfg = decodeStage1Config(s1.config);
  const offset = Number(a.partition.firstLba) * 512;
  const { readRange } = await import('../../imagebuild/disk-read.ts');
  const head = readRange(disk, offset, Number(a.partition.sizeBytes));
  const v = verifyStage2(head, { pinned: cfg.keys, rollbackFloor: cfg.rollbackFloor });
  return { offset, size: Number(a.partition.sizeBytes), v };
}

/** Rewrites slot a with a stage 2 re-signed from `change(input)`, by `keysDir`'s vendor key (or `signer`). */
export async function resignSlotA(
  disk: string,
  work: string,
  keysDir: string,
  change: (i: Stage2Input) => Stage2Input,
  signerName = 'vendor',
): Promise<void> {
  const { offset, size, v } = await slotA(disk, work);
  const d = v.descriptor;
  const input: Stage2Input = {
    kernel: v.kernel,
    initrd: v.initrd,
    cmdline: d.cmdline,
    rootHash: d.rootHash,
    name: d.name,
    version: d.version,
    rollbackIndex: d.rollbackIndex,
    created: d.created,
  };
  const key = await readPrivateKey(join(keysDir, `${signerName}.key`));
  const [cert] = await readCertificates(join(keysDir, `${signerName}.crt`));
  if (cert === undefined) throw new Error('no vendor cert');
  const { image } = signStage2(change(input), { key, cert });
  if (image.length > size) throw new Error('stage 2 too big');
  await writeAt(disk, offset, image);
}

let running = 0;
const queue: (() => void)[] = [];
async function slot(): Promise<() => void> {
  if (running >= 2) await new Promise<void>((r) => queue.push(r));
  running++;
  return () => {
    running--;
    queue.shift()?.();
  };
}

export interface BootLog {
  lines: string[];
  hit: string | undefined;
  poweredOff: boolean;
  ms: number;
}

/** Boots `disk` (snapshot) until a line matches `until` or the guest stops; returns the console. */
export async function boot(
  disk: string,
  until: RegExp,
  o: { secureBoot?: boolean; ovmfVars?: string } = {},
): Promise<BootLog> {
  const release = await slot();
  try {
    const lines: string[] = [];
    let hit: string | undefined;
    let q: QemuRun | undefined;
    const t0 = Date.now();
    q = await runQemu({
      disk,
      timeout: BOOT_MS,
      serial: 'none',
      snapshot: true,
      secureBoot: o.secureBoot ?? true,
      ...(o.ovmfVars === undefined ? {} : { ovmfVars: o.ovmfVars }),
      onLine: (l) => {
        lines.push(l);
        if (hit === undefined && until.test(l)) {
          hit = l;
          q?.kill();
        }
      },
    });
    const r = await q.done;
    return { lines, hit, poweredOff: r.poweredOff, ms: Date.now() - t0 };
  } finally {
    release();
  }
}
