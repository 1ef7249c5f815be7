// `mway-image build`: image spec → a bootable GPT disk (doc/disk-layout.md). Every step is
// deterministic in the spec, the keys and SOURCE_DATE_EPOCH: file systems take the epoch,
// verity salts and every UUID derive from a seed naming the image, signatures are
// deterministic ML-DSA. This file only orders the artefacts' builders; the disk is written
// under a temporary name and renamed into place at the very end.
import { createHash } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { makeOutputDir, type Progress } from '../common/index.ts';
import { layoutRow, partitionBytes, partitionLabel } from '../platform/index.ts';
import { buildEsp, fetchBootKernel } from './build-boot.ts';
import { buildStage1, buildStage2 } from './build-chain.ts';
import { chainSigners } from './secure-boot-signers.ts';
import { buildContext, MiB } from './build-context.ts';
import { buildCoreos } from './build-coreos.ts';
import { buildPolicy } from './build-policy.ts';
import { type BuiltPartition, buildDisk } from './build-disk.ts';
import { gatherLayers, type PreinstalledLayer } from './build-layers.ts';
import { buildSecureConfig } from './build-secure-config.ts';
import { buildCertificates, loadTrust } from './build-trust.ts';
import { buildExt4Partitions, dataSkeleton, emptyFolder } from './build-writable.ts';
import { coreosAgentConfig } from './coreos-paths.ts';
import type { ImageSpec } from './image-spec.ts';
import { ImageError } from './image-error.ts';

export type { BuiltPartition } from './build-disk.ts';

export interface BuildOptions {
  spec: ImageSpec;
  outDir: string;
  /** Use this keys folder instead of the spec's (must hold the six files). */
  keysDir?: string;
  sourceDateEpoch: number;
  progress?: Progress;
  /** Kernel download/unpack cache (default .cache/kernel). */
  kernelCache?: string;
}

export interface BuildResult {
  disk: string;
  sizeBytes: number;
  name: string;
  version: string;
  sourceDateEpoch: number;
  kernel: string;
  cmdline: string;
  selinux: { mode: 'enforcing' | 'permissive' | 'off'; policyBytes: number; policySha256: string };
  stage1: { unsigned: string; signer: string; pinned: string[]; rollbackFloor: number };
  stage2: { name: string; version: string; rollbackIndex: number; signer: string; kexecSigner: string };
  coreos: { rootHash: string; sizeBytes: number; signer: string };
  certificates: { rootHash: string; anchors: string[] };
  secureConfig: { signer: string };
  layers: PreinstalledLayer[];
  partitions: BuiltPartition[];
  keysDir: string;
  keysGenerated: boolean;
  durationMs: number;
}

/**
 * Builds the disk for `spec` into OUT/disk.img (and OUT/build.json); returns the summary.
 * Progress: one step per piece of work, named `TOOL ROLE` for each partition image
 * (`erofs coreos-a`, `verity coreos-a`, `ext4 data`, …); every step but `keys` reports
 * bytes — written for a finished image, hashed or copied as it goes for verity and the disk.
 */
export async function buildImage(o: BuildOptions): Promise<BuildResult> {
  const started = Date.now();
  const { spec } = o;
  const outDir = resolve(o.outDir);
  await makeOutputDir(outDir, {
    what: 'output folder',
    error: (code, message, options) => new ImageError(code, message, options),
  });
  const work = join(outDir, `.build-${process.pid}`);
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const progress = o.progress ?? { step() {}, bytes() {}, done() {} };
  const ctx = buildContext({ spec, epoch: o.sourceDateEpoch, work, progress });
  try {
    const trust = await loadTrust(ctx, {
      outDir,
      ...(o.keysDir === undefined ? {} : { keysDir: o.keysDir }),
    });
    const kernel = await fetchBootKernel(ctx, o.kernelCache);
    const layers = await gatherLayers(ctx, trust);
    const agentConfig = coreosAgentConfig({
      peerIdentity: spec.peerIdentity !== undefined,
      extra: spec.agent,
    });
    const policy = await buildPolicy(ctx, layers.policies);
    const coreos = await buildCoreos(ctx, trust, {
      label: partitionLabel(layoutRow('coreos-a'), `${spec.name}_${spec.version}`),
      agentConfig,
      policy,
    });
    const certificates = await buildCertificates(ctx, trust, partitionLabel(layoutRow('certificates'), ''));
    const secureConfig = await buildSecureConfig(ctx, trust);

    const empty = await emptyFolder(ctx);
    const writable = await buildExt4Partitions(ctx, {
      'secure-dynamic-config': { dir: empty },
      'dynamic-config': { dir: empty },
      // Room for the files plus ext4's own overhead (and for a few installs at run time).
      layers: { dir: layers.dir, minBytes: layers.bytes * 1.2 + 16 * MiB },
      data: { dir: await dataSkeleton(ctx) },
      ...(spec.peerIdentity === undefined ? {} : { 'peer-identity': { dir: spec.peerIdentity } }),
    });

    const signers = await chainSigners(
      ctx,
      trust.keysDir,
      trust.keys.generated || (o.keysDir === undefined && spec.keys.generate),
    );
    const stage2 = await buildStage2(ctx, trust, {
      kernel,
      coreosRootHash: coreos.verity.rootHash,
      kexec: signers.kexec,
      kexecSubject: signers.kexec.subject,
    });
    const bootA = join(work, 'boot-a.img');
    await writeFile(bootA, stage2.image);
    const stage1 = await buildStage1(ctx, trust, {
      kernel,
      certsRootHash: certificates.verity.rootHash,
      signer: signers.stage1,
      signerSubject: signers.stage1.subject,
      outDir,
    });
    const esp = await buildEsp(ctx, {
      stage1: stage1.signed,
      sizeBytes: partitionBytes(layoutRow('esp'), spec.partitions, 0),
    });
    const rootHash = coreos.verity.rootHash;
    const certs = certificates.verity;
    const built = await buildDisk(ctx, {
      esp: { image: esp, contentBytes: 0 },
      'boot-a': { image: bootA, contentBytes: stage2.image.length },
      'boot-b': { contentBytes: stage2.image.length },
      'coreos-a': { image: coreos.image, contentBytes: coreos.sizeBytes, rootHash },
      'coreos-a-verity': { image: coreos.hash, contentBytes: coreos.verity.hashSize, rootHash },
      'coreos-a-verity-sig': { image: coreos.sig, contentBytes: coreos.sigBytes },
      certificates: {
        image: certificates.image,
        contentBytes: certs.hashOffset + certs.hashSize,
        rootHash: certs.rootHash,
      },
      'secure-config': secureConfig,
      ...writable,
    });
    const disk = join(outDir, 'disk.img');
    await rename(built.path, disk);

    const { keys } = trust;
    const result: BuildResult = {
      disk,
      sizeBytes: built.sizeBytes,
      name: spec.name,
      version: spec.version,
      sourceDateEpoch: ctx.epoch,
      kernel: kernel.version,
      cmdline: stage2.descriptor.cmdline,
      selinux: {
        mode: spec.selinux,
        policyBytes: policy.policy.length,
        policySha256: createHash('sha256').update(policy.policy).digest('hex'),
      },
      stage1: {
        unsigned: stage1.unsigned,
        signer: signers.stage1.subject,
        pinned: stage1.pinned.map((k) => `${k.label} ${k.certFingerprint}`),
        rollbackFloor: spec.bootchain.rollbackFloor,
      },
      stage2: {
        name: stage2.descriptor.name,
        version: stage2.descriptor.version,
        rollbackIndex: Number(stage2.descriptor.rollbackIndex),
        signer: keys.vendor.chain[0]?.subject ?? '',
        kexecSigner: stage2.kexecSigner,
      },
      coreos: {
        rootHash: coreos.verity.rootHash,
        sizeBytes: coreos.sizeBytes,
        signer: keys.vendor.chain[0]?.subject ?? '',
      },
      certificates: {
        rootHash: certificates.verity.rootHash,
        anchors: trust.anchors.map((c) => `${c.role} ${c.subject} ${c.fingerprint}`),
      },
      secureConfig: { signer: keys.user.chain[0]?.subject ?? '' },
      layers: layers.layers,
      partitions: built.partitions,
      keysDir: trust.keysDir,
      keysGenerated: keys.generated,
      durationMs: Date.now() - started,
    };
    const { durationMs: _d, ...stable } = result;
    await writeFile(join(outDir, 'build.json'), `${JSON.stringify(stable, null, 2)}\n`);
    progress.done();
    return result;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
