// `mway-image build`: image spec → a bootable GPT disk (doc/disk-layout.md). Every step is
// deterministic in the spec, the keys and SOURCE_DATE_EPOCH: file systems take the epoch,
// verity salts and every UUID derive from a seed naming the image, signatures are
// deterministic ML-DSA. The disk is written under a temporary name and renamed at the end.
import { copyFile, lstat, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, isAbsolute, join, resolve } from 'node:path';
import type { Progress } from '../common/progress.ts';
import { type Certificate, type Crl, parseCertificates, parseCrl } from '../keys/index.ts';
import { packLayer } from '../layers/pack.ts';
import { verifyLayer } from '../layers/verify.ts';
import { buildCoreosTree } from './coreos-tree.ts';
import { loadImageKeys } from './dev-keys.ts';
import { coreosAgentConfig, coreosLabels, EMPTY_SLOT, PARTLABEL } from './disk-layout.ts';
import {
  deriveUuid,
  DPS,
  formatVerity,
  type GptPartitionSpec,
  makeErofs,
  makeExt4,
  makeVfat,
  writeGpt,
} from '../formats/index.ts';
import { ImageError } from './image-error.ts';
import type { ImageSpec } from './image-spec.ts';
import { verityPartitionUuids } from './initramfs-init.ts';
import { buildInitramfs } from './initramfs.ts';
import { DEFAULT_KERNEL_CACHE, fetchKernel } from './kernel-package.ts';
import { MILKYWAY } from './partition-types.ts';
import { SECURE_CONFIG_FILE, signSecureConfig } from './secure-config.ts';
import { buildUki, coreosCmdline } from './uki.ts';
import { encodeVeritySig } from './verity-sig.ts';

const MiB = 1 << 20;
const roundMiB = (n: number): number => Math.max(MiB, Math.ceil(n / MiB) * MiB);

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

export interface BuiltPartition {
  index: number;
  name: string;
  role: string;
  type: string;
  uuid: string;
  sizeBytes: number;
  filesystem: string | null;
  rootHash?: string;
}

export interface BuildResult {
  disk: string;
  sizeBytes: number;
  name: string;
  version: string;
  sourceDateEpoch: number;
  kernel: string;
  cmdline: string;
  coreos: { rootHash: string; sizeBytes: number; signer: string };
  certificates: { rootHash: string; anchors: string[] };
  secureConfig: { signer: string };
  layers: { name: string; version: string; signers: string[]; file: string }[];
  partitions: BuiltPartition[];
  keysDir: string;
  keysGenerated: boolean;
  durationMs: number;
}

/** Certificates and CRLs for the certificate partition, as files named by fingerprint. */
async function trustFiles(
  anchors: readonly Certificate[],
  extraAnchors: readonly string[],
  crlPaths: readonly string[],
): Promise<{ anchors: Certificate[]; crls: { name: string; pem: string; crl: Crl }[] }> {
  const all = [...anchors];
  for (const p of extraAnchors) all.push(...parseCertificates(await readFile(p)));
  const unique = new Map(all.map((c) => [c.fingerprint, c]));
  const crls = [];
  for (const p of crlPaths) {
    const bytes = await readFile(p);
    crls.push({
      name: basename(p).replace(/\.(pem|der|crl)$/, ''),
      pem: bytes.toString('latin1'),
      crl: parseCrl(bytes),
    });
  }
  return { anchors: [...unique.values()], crls };
}

/** Bytes of the regular files under `dir` (symlinks not followed). */
async function treeBytes(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) n += (await lstat(join(e.parentPath, e.name))).size;
  }
  return n;
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
  const progress = o.progress ?? { step() {}, bytes() {}, done() {} };
  /** Reports a finished file's size as the current step's byte count. */
  const written = async (path: string): Promise<number> => {
    const n = (await stat(path)).size;
    progress.bytes(n, n);
    return n;
  };
  const hashing = { onProgress: (done: number, total: number) => progress.bytes(done, total) };
  const epoch = o.sourceDateEpoch;
  const now = new Date(epoch * 1000);
  const outDir = resolve(o.outDir);
  const seed = `milkyway-image/${spec.name}/${spec.version}/${epoch}`;
  const uuid = (purpose: string) => deriveUuid(seed, purpose, spec.name);
  await mkdir(outDir, { recursive: true });
  const work = join(outDir, `.build-${process.pid}`);
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  try {
    progress.step('keys');
    const keysDir =
      o.keysDir !== undefined
        ? resolve(o.keysDir)
        : isAbsolute(spec.keys.dir)
          ? spec.keys.dir
          : join(outDir, spec.keys.dir);
    const keys = await loadImageKeys(keysDir, { generate: o.keysDir === undefined && spec.keys.generate });
    const trust = await trustFiles([keys.vendorRoot, keys.userRoot], spec.trust.anchors, spec.trust.crls);
    const crls = trust.crls.map((c) => c.crl);

    progress.step('kernel');
    const kernel = await fetchKernel({
      ...('deb' in spec.kernel ? { deb: spec.kernel.deb } : { package: spec.kernel.package }),
      cacheDir: o.kernelCache ?? DEFAULT_KERNEL_CACHE,
    });
    await written(kernel.vmlinuz);

    progress.step('layers');
    const layersDir = join(work, 'layers');
    await mkdir(layersDir);
    const layers: BuildResult['layers'] = [];
    let layersBytes = 0;
    for (const [i, src] of spec.layers.entries()) {
      let mwl = src;
      if (!src.endsWith('.mwl')) {
        mwl = join(work, `layer-${i}.mwl`);
        await packLayer({
          dir: src,
          key: keys.user.key,
          chain: keys.user.chain,
          out: mwl,
          sourceDateEpoch: epoch,
        });
      }
      // The agent would refuse what does not verify here; fail the build instead.
      const v = await verifyLayer(mwl, { anchors: trust.anchors, crls });
      const file = `${v.manifest.name}.mwl`;
      if (layers.some((l) => l.file === file))
        throw new ImageError('E_SPEC_INVALID', `Layer ${v.manifest.name} is listed twice`, {
          details: { field: `layers[${i}]` },
        });
      await copyFile(mwl, join(layersDir, file));
      layersBytes += (await stat(join(layersDir, file))).size;
      progress.bytes(layersBytes, layersBytes);
      layers.push({
        name: v.manifest.name,
        version: v.manifest.version,
        signers: v.signers.map((s) => s.subject),
        file,
      });
    }

    progress.step('CoreOS tree');
    const agentConfig = coreosAgentConfig({
      peerIdentity: spec.peerIdentity !== undefined,
      extra: spec.agent,
    });
    const tree = join(work, 'coreos');
    await buildCoreosTree(tree, spec, agentConfig);
    const treeSize = await treeBytes(tree);
    progress.bytes(treeSize, treeSize);
    progress.step('erofs coreos-a');
    const coreosImg = join(work, 'coreos.erofs');
    const coreosHash = join(work, 'coreos.verity');
    await makeErofs(tree, coreosImg, { sourceDateEpoch: epoch, rootOwner: true, uuid: uuid('coreos-erofs') });
    await rm(tree, { recursive: true, force: true });
    const coreosSize = await written(coreosImg);
    progress.step('verity coreos-a');
    const labels = coreosLabels(spec.name, spec.version);
    const cv = await formatVerity(coreosImg, { hashPath: coreosHash, seed, label: labels.data, ...hashing });
    const sigBytes = encodeVeritySig({
      payload: {
        rootHash: cv.rootHash,
        name: spec.name,
        version: spec.version,
        architecture: spec.architecture,
      },
      key: keys.vendor.key,
      chain: keys.vendor.chain,
      now,
    });
    const sigImg = join(work, 'coreos.verity-sig');
    await writeFile(sigImg, sigBytes);

    progress.step('erofs certificates');
    const certDir = join(work, 'certs');
    await mkdir(certDir);
    const names = new Map([
      [keys.vendorRoot.fingerprint, 'vendor-root'],
      [keys.userRoot.fingerprint, 'user-root'],
    ]);
    for (const c of trust.anchors)
      await writeFile(join(certDir, `${names.get(c.fingerprint) ?? c.fingerprint.slice(0, 16)}.crt`), c.pem);
    for (const c of trust.crls) await writeFile(join(certDir, `${c.name}.crl`), c.pem);
    const certImg = join(work, 'certificates.img');
    await makeErofs(certDir, certImg, {
      sourceDateEpoch: epoch,
      rootOwner: true,
      uuid: uuid('certificates'),
    });
    await written(certImg);
    progress.step('verity certificates');
    const certv = await formatVerity(certImg, { seed, label: PARTLABEL.certificates, ...hashing });

    progress.step('erofs secure-config');
    const scDir = join(work, 'secure-config');
    await mkdir(scDir);
    await writeFile(
      join(scDir, SECURE_CONFIG_FILE),
      signSecureConfig({ payload: spec.secureConfig, key: keys.user.key, chain: keys.user.chain, now }),
    );
    const scImg = join(work, 'secure-config.img');
    await makeErofs(scDir, scImg, { sourceDateEpoch: epoch, rootOwner: true, uuid: uuid('secure-config') });
    await written(scImg);

    const P = spec.partitions;
    const ext4 = async (label: string, dir: string, mib: number, min = 0): Promise<string> => {
      const out = join(work, `${label}.img`);
      progress.step(`ext4 ${label}`);
      await makeExt4(dir, out, {
        sourceDateEpoch: epoch,
        rootOwner: true,
        uuid: uuid(label),
        label: label.slice(0, 16),
        size: Math.max(mib * MiB, roundMiB(min)),
      });
      await written(out);
      return out;
    };
    const emptyDir = join(work, 'empty');
    await mkdir(emptyDir);
    const dataDir = join(work, 'data');
    for (const d of ['common', 'secure', 'group']) await mkdir(join(dataDir, d), { recursive: true });
    const sdcImg = await ext4(PARTLABEL.secureDynamicConfig, emptyDir, P.secureDynamicConfig);
    const dcImg = await ext4(PARTLABEL.dynamicConfig, emptyDir, P.dynamicConfig);
    const layersImg = await ext4(PARTLABEL.layers, layersDir, P.layers, layersBytes * 1.2 + 16 * MiB);
    const dataImg = await ext4(PARTLABEL.data, dataDir, P.data);
    const peerImg =
      spec.peerIdentity === undefined
        ? undefined
        : await ext4(PARTLABEL.peerIdentity, spec.peerIdentity, P.peerIdentity);

    progress.step('initramfs + UKI');
    const initrd = await buildInitramfs({ kernel, sourceDateEpoch: epoch });
    const cmdline = coreosCmdline({
      rootHash: cv.rootHash,
      extra: [`mway.certs=${certv.rootHash}`, ...spec.coreos.cmdline],
    });
    const espDir = join(work, 'esp');
    await mkdir(join(espDir, 'EFI', 'BOOT'), { recursive: true });
    const uki = await buildUki({
      vmlinuz: kernel.vmlinuz,
      initrd,
      cmdline,
      out: join(espDir, 'EFI', 'BOOT', 'BOOTX64.EFI'),
      osRelease: `NAME="MilkyWayLinux"\nID=milkyway\nIMAGE_ID=${spec.name}\nIMAGE_VERSION=${spec.version}\nPRETTY_NAME="MilkyWayLinux ${spec.name} ${spec.version}"\n`,
    });
    progress.bytes(uki.size, uki.size);
    progress.step('vfat esp');
    const espImg = join(work, 'esp.img');
    await makeVfat(espDir, espImg, {
      sourceDateEpoch: epoch,
      size: P.esp * MiB,
      label: 'ESP',
      volumeId: uuid('esp').replaceAll('-', '').slice(0, 8),
    });
    await written(espImg);

    progress.step('GPT disk');
    const slot = P.coreos > 0 ? P.coreos * MiB : roundMiB(coreosSize * 1.25);
    if (slot < coreosSize) {
      throw new ImageError(
        'E_SPEC_INVALID',
        `CoreOS is ${coreosSize} bytes; partitions.coreos (${P.coreos} MiB) is too small`,
        {
          details: { field: 'partitions.coreos', needed: coreosSize },
        },
      );
    }
    const hashSlot = roundMiB(cv.hashSize * 1.25);
    const ids = verityPartitionUuids(cv.rootHash);
    const ro = { readOnly: true };
    const parts: (GptPartitionSpec & { role: string; filesystem: string | null; rootHash?: string })[] = [
      {
        role: 'esp',
        name: PARTLABEL.esp,
        type: DPS.esp,
        uuid: uuid('esp-part'),
        sizeBytes: P.esp * MiB,
        image: espImg,
        filesystem: 'vfat',
      },
      {
        role: 'coreos-a',
        name: labels.data,
        type: DPS.root,
        uuid: ids.data,
        sizeBytes: slot,
        image: coreosImg,
        attributes: ro,
        filesystem: 'erofs',
        rootHash: cv.rootHash,
      },
      {
        role: 'coreos-a-verity',
        name: labels.verity,
        type: DPS.rootVerity,
        uuid: ids.hash,
        sizeBytes: hashSlot,
        image: coreosHash,
        attributes: ro,
        filesystem: 'verity',
        rootHash: cv.rootHash,
      },
      {
        role: 'coreos-a-verity-sig',
        name: labels.sig,
        type: MILKYWAY.coreosVeritySig,
        uuid: uuid('coreos-a-sig'),
        sizeBytes: MiB,
        image: sigImg,
        attributes: ro,
        filesystem: 'verity-sig',
      },
      {
        role: 'coreos-b',
        name: EMPTY_SLOT,
        type: DPS.root,
        uuid: uuid('coreos-b'),
        sizeBytes: slot,
        attributes: ro,
        filesystem: null,
      },
      {
        role: 'coreos-b-verity',
        name: EMPTY_SLOT,
        type: DPS.rootVerity,
        uuid: uuid('coreos-b-verity'),
        sizeBytes: hashSlot,
        attributes: ro,
        filesystem: null,
      },
      {
        role: 'coreos-b-verity-sig',
        name: EMPTY_SLOT,
        type: MILKYWAY.coreosVeritySig,
        uuid: uuid('coreos-b-sig'),
        sizeBytes: MiB,
        attributes: ro,
        filesystem: null,
      },
      {
        role: 'certificates',
        name: PARTLABEL.certificates,
        type: MILKYWAY.certificates,
        uuid: uuid('certificates-part'),
        sizeBytes: Math.max(P.certificates * MiB, roundMiB(certv.hashOffset + certv.hashSize)),
        image: certImg,
        attributes: ro,
        filesystem: 'erofs+verity',
        rootHash: certv.rootHash,
      },
      {
        role: 'secure-config',
        name: PARTLABEL.secureConfig,
        type: MILKYWAY.secureConfig,
        uuid: uuid('secure-config-part'),
        sizeBytes: Math.max(P.secureConfig * MiB, roundMiB((await stat(scImg)).size)),
        image: scImg,
        attributes: ro,
        filesystem: 'erofs',
      },
      {
        role: 'secure-dynamic-config',
        name: PARTLABEL.secureDynamicConfig,
        type: MILKYWAY.secureDynamicConfig,
        uuid: uuid('sdc-part'),
        sizeBytes: (await stat(sdcImg)).size,
        image: sdcImg,
        filesystem: 'ext4',
      },
      {
        role: 'dynamic-config',
        name: PARTLABEL.dynamicConfig,
        type: MILKYWAY.dynamicConfig,
        uuid: uuid('dc-part'),
        sizeBytes: (await stat(dcImg)).size,
        image: dcImg,
        filesystem: 'ext4',
      },
      {
        role: 'layers',
        name: PARTLABEL.layers,
        type: MILKYWAY.layers,
        uuid: uuid('layers-part'),
        sizeBytes: (await stat(layersImg)).size,
        image: layersImg,
        filesystem: 'ext4',
      },
      {
        role: 'data',
        name: PARTLABEL.data,
        type: MILKYWAY.data,
        uuid: uuid('data-part'),
        sizeBytes: (await stat(dataImg)).size,
        image: dataImg,
        filesystem: 'ext4',
      },
    ];
    if (peerImg !== undefined)
      parts.push({
        role: 'peer-identity',
        name: PARTLABEL.peerIdentity,
        type: MILKYWAY.peerIdentity,
        uuid: uuid('peer-part'),
        sizeBytes: (await stat(peerImg)).size,
        image: peerImg,
        attributes: ro,
        filesystem: 'ext4',
      });
    // 1 MiB before the first partition, 1 MiB for the backup GPT and alignment slack.
    const sizeBytes = parts.reduce((a, p) => a + p.sizeBytes, 0) + 2 * MiB;
    const disk = join(outDir, 'disk.img');
    const tmpDisk = join(work, 'disk.img');
    const gpt = await writeGpt(tmpDisk, {
      sizeBytes,
      diskGuid: uuid('disk'),
      onProgress: (done, total) => progress.bytes(done, total),
      partitions: parts.map(({ role: _r, filesystem: _f, rootHash: _h, ...p }) => p),
    });
    await rename(tmpDisk, disk);

    const result: BuildResult = {
      disk,
      sizeBytes,
      name: spec.name,
      version: spec.version,
      sourceDateEpoch: epoch,
      kernel: kernel.version,
      cmdline,
      coreos: { rootHash: cv.rootHash, sizeBytes: coreosSize, signer: keys.vendor.chain[0]?.subject ?? '' },
      certificates: {
        rootHash: certv.rootHash,
        anchors: trust.anchors.map((c) => `${c.role} ${c.subject} ${c.fingerprint}`),
      },
      secureConfig: { signer: keys.user.chain[0]?.subject ?? '' },
      layers,
      partitions: gpt.partitions.map((g, i) => {
        const p = parts[i] as (typeof parts)[number];
        return {
          index: g.index,
          name: g.name,
          role: p.role,
          type: g.type,
          uuid: g.uuid,
          sizeBytes: Number(g.sizeBytes),
          filesystem: p.filesystem,
          ...(p.rootHash === undefined ? {} : { rootHash: p.rootHash }),
        };
      }),
      keysDir,
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
