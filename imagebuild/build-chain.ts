// The boot chain's artefacts (doc/boot.md): stage 2 — the vendor's kernel (Authenticode-signed
// with the vendor kexec key), today's initramfs and the command line pinning CoreOS, laid out
// with its ML-DSA descriptor as the `boot-a` partition image — and stage 1 — a UKI of Debian's
// kernel and a small initramfs (busybox, the block drivers, the static mway-stage1 verifier,
// the stage-1 config and its user signature), built unsigned and then signed for Secure Boot
// with the user's db key as a separate step. Both are deterministic in their inputs.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireTool } from '../common/index.ts';
import {
  buildVerifier,
  encodeStage1Config,
  type PinnedKey,
  pinVendorKey,
  type SbKey,
  sbSign,
  signStage1Config,
  signStage2,
  stripSignature,
  type Stage2Descriptor,
} from '../bootchain/index.ts';
import { type CpioEntry, writeCpio } from '../formats/index.ts';
import { canonicalJson } from '../keys/index.ts';
import type { BuildContext } from './build-context.ts';
import type { ImageTrust } from './build-trust.ts';
import { buildInitramfs } from './initramfs.ts';
import type { KernelPackage } from './kernel-package.ts';
import { moduleClosure } from './module-closure.ts';
import { STAGE1_BINARY, STAGE1_CONFIG_PATH, STAGE1_SIGNATURE_PATH, stage1Init } from './stage1-init.ts';
import { selinuxCmdline } from './build-boot.ts';
import { buildUki, coreosCmdline } from './uki.ts';

/** Drivers stage 1 needs to read the disk (virtio for QEMU, NVMe and AHCI for hardware). */
export const STAGE1_MODULES: readonly string[] = [
  'virtio_pci',
  'virtio_blk',
  'virtio_scsi',
  'nvme',
  'ahci',
  'sd_mod',
];
const MODULES_LIST = '/etc/modules.load';

export interface Stage2Image {
  image: Uint8Array;
  descriptor: Stage2Descriptor;
  /** The stage-2 kernel's Authenticode signer (the vendor kexec certificate's subject). */
  kexecSigner: string;
}

/** Step `stage 2`: kernel signed for kexec, initramfs, cmdline, the ML-DSA descriptor. */
export async function buildStage2(
  ctx: BuildContext,
  trust: ImageTrust,
  o: { kernel: KernelPackage; coreosRootHash: string; kexec: SbKey; kexecSubject: string },
): Promise<Stage2Image> {
  const { spec } = ctx;
  ctx.progress.step('stage 2');
  const unsigned = join(ctx.work, 'stage2-vmlinuz.unsigned');
  const signed = join(ctx.work, 'stage2-vmlinuz');
  // Debian's own signature chains to a CA no db here holds: replace it with the vendor's.
  await writeFile(unsigned, await stripSignature(new Uint8Array(await readFile(o.kernel.vmlinuz))));
  await sbSign({ input: unsigned, output: signed, signer: o.kexec, epoch: ctx.epoch });
  const initrd = await buildInitramfs({
    kernel: o.kernel,
    sourceDateEpoch: ctx.epoch,
    extraModules: spec.coreos.kernelModules,
  });
  const leaf = trust.keys.vendor.chain[0];
  if (leaf === undefined) throw new TypeError('vendor chain is empty');
  const { image, descriptor } = signStage2(
    {
      kernel: new Uint8Array(await readFile(signed)),
      initrd,
      // The SELinux mode's words are signed into stage 2's command line: the mode is the vendor's.
      cmdline: coreosCmdline({
        rootHash: o.coreosRootHash,
        extra: [...selinuxCmdline(spec.selinux), ...spec.coreos.cmdline],
      }),
      rootHash: o.coreosRootHash,
      name: spec.name,
      version: spec.version,
      rollbackIndex: BigInt(spec.bootchain.rollbackIndex),
      created: BigInt(ctx.epoch),
    },
    { key: trust.keys.vendor.key, cert: leaf },
  );
  ctx.progress.bytes(image.length, image.length);
  return { image, descriptor, kexecSigner: o.kexecSubject };
}

export interface Stage1Image {
  /** The unsigned UKI (reproducible) and the signed one that goes on the ESP. */
  unsigned: string;
  signed: string;
  config: Uint8Array;
  pinned: PinnedKey[];
}

/** Step `stage 1`: the stage-1 initramfs and UKI, then its Secure Boot signature. */
export async function buildStage1(
  ctx: BuildContext,
  trust: ImageTrust,
  o: { kernel: KernelPackage; certsRootHash: string; signer: SbKey; signerSubject: string; outDir: string },
): Promise<Stage1Image> {
  ctx.progress.step('stage 1');
  const { keys } = trust;
  const vendorLeaf = keys.vendor.chain[0];
  const userLeaf = keys.user.chain[0];
  if (vendorLeaf === undefined || userLeaf === undefined) throw new TypeError('empty signing chain');
  // Checked now, not at SOURCE_DATE_EPOCH: the certificate must be valid when it is pinned.
  const pinned = [pinVendorKey(vendorLeaf, { anchors: [keys.vendorRoot] })];
  const config = encodeStage1Config({
    rollbackFloor: BigInt(ctx.spec.bootchain.rollbackFloor),
    certsRootHash: o.certsRootHash,
    userRoot: keys.userRoot.fingerprint,
    vendorRoot: keys.vendorRoot.fingerprint,
    sbSigner: o.signerSubject.slice(0, 63),
    keys: pinned,
  });
  const sig = signStage1Config(config, { key: keys.user.key, chain: keys.user.chain, now: ctx.now });

  const entries = new Map<string, CpioEntry>();
  const put = (e: CpioEntry): void => {
    const path = e.path.replace(/^\/+/, '');
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!entries.has(d)) entries.set(d, { path: d, type: 'dir', mode: 0o755 });
    }
    entries.set(path, { ...e, path });
  };
  for (const d of ['dev', 'proc', 'sys', 'run', 'tmp', 'etc/milkyway'])
    put({ path: d, type: 'dir', mode: 0o755 });
  put({ path: 'dev/console', type: 'char', major: 5, minor: 1, mode: 0o600 });
  const busybox = await requireTool('busybox');
  put({ path: 'bin/busybox', type: 'file', data: await readFile(busybox), mode: 0o755 });
  for (const a of [
    'sh',
    'mount',
    'insmod',
    'dmesg',
    'grep',
    'echo',
    'sleep',
    'usleep',
    'poweroff',
    'sync',
    'cat',
  ])
    put({ path: `bin/${a}`, type: 'symlink', target: '/bin/busybox' });
  const prefix = `${o.kernel.modulesDir}/`;
  const listed: string[] = [];
  for (const m of await moduleClosure(o.kernel.modulesDir, o.kernel.version, STAGE1_MODULES)) {
    const dest = `lib/modules/${o.kernel.version}/${m.slice(prefix.length)}`;
    put({ path: dest, type: 'file', data: await readFile(m), mode: 0o644 });
    listed.push(`/${dest}`);
  }
  put({ path: MODULES_LIST, type: 'file', data: Buffer.from(`${listed.join('\n')}\n`), mode: 0o644 });
  put({ path: STAGE1_BINARY, type: 'file', data: await readFile(await buildVerifier()), mode: 0o755 });
  put({ path: STAGE1_CONFIG_PATH, type: 'file', data: config, mode: 0o644 });
  put({ path: STAGE1_SIGNATURE_PATH, type: 'file', data: canonicalJson(sig), mode: 0o644 });
  put({
    path: 'etc/milkyway/vendor-root.crt',
    type: 'file',
    data: Buffer.from(keys.vendorRoot.pem),
    mode: 0o644,
  });
  put({
    path: 'etc/milkyway/user-root.crt',
    type: 'file',
    data: Buffer.from(keys.userRoot.pem),
    mode: 0o644,
  });
  put({
    path: 'init',
    type: 'file',
    data: Buffer.from(stage1Init({ modulesList: MODULES_LIST, sbSigner: o.signerSubject })),
    mode: 0o755,
  });
  const initrd = await writeCpio([...entries.values()], { sourceDateEpoch: ctx.epoch, compress: 'zstd' });

  const unsigned = join(o.outDir, 'stage1.unsigned.efi');
  await buildUki({
    vmlinuz: o.kernel.vmlinuz,
    initrd,
    cmdline: 'console=ttyS0,115200 panic=10 quiet',
    out: unsigned,
    osRelease: `NAME="MilkyWayLinux stage 1"\nID=milkyway\nIMAGE_ID=${ctx.spec.name}\nIMAGE_VERSION=${ctx.spec.version}\n`,
  });
  const signed = join(ctx.work, 'stage1.efi');
  await sbSign({ input: unsigned, output: signed, signer: o.signer, epoch: ctx.epoch });
  await ctx.written(signed);
  return { unsigned, signed, config, pinned };
}
