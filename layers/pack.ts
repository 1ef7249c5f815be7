// `packLayer`: directory (layer.json + rootfs/ [+ policy.cil]) → signed .mwl.
// Deterministic: erofs with every time = SOURCE_DATE_EPOCH and root ownership, verity
// salt and UUID derived from name, version and epoch, canonical manifest, deterministic ML-DSA.
import { createHash } from 'node:crypto';
import { lstat, mkdtemp, rm, stat, truncate } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { type Progress, readRegularFile, run, sampleCpuIdle, writeFailure } from '../common/index.ts';
import { BLOCK_SIZE, deriveVeritySalt, deriveVerityUuid, uuidToBytes } from '../formats/index.ts';
import { buildPayloadVerity } from './payload-verity.ts';
import type { Certificate, SigningKey } from '../keys/index.ts';
import type { LayerCode } from './layer-codes.ts';
import { LayerError } from './layer-error.ts';
import { checkSigner, type ExpandedKey, expandSigningKey, signManifest } from './layer-signature.ts';
import {
  type LayerManifest,
  MAX_MANIFEST,
  MAX_POLICY,
  manifestJson,
  parseManifest,
  type SourceManifest,
  validateManifest,
} from './manifest.ts';
import {
  manifestMember,
  type MwlMember,
  payloadOffsetFor,
  shiftPayload,
  startWriteBack,
  writeAroundPayload,
  writeBackWhile,
  writeMwl,
} from './mwl-write.ts';
import { BLOCK } from './mwl-tar.ts';
import { checkPolicy } from './policy-check.ts';
import { checkTreeSync } from './rootfs-check.ts';
import { canonicalJson } from '../keys/index.ts';

export interface PackOptions {
  /** Directory with layer.json, rootfs/ and optionally policy.cil. */
  dir: string;
  key: SigningKey;
  /** Signer certificate chain, leaf first. */
  chain: readonly Certificate[];
  out: string;
  /** Seconds since the epoch for every timestamp; default env SOURCE_DATE_EPOCH, else 0. */
  sourceDateEpoch?: number;
  /** Use this manifest instead of DIR/layer.json (import-oci). */
  manifest?: unknown;
  /** Hedged ML-DSA instead of deterministic (the file then differs per run). */
  hedged?: boolean;
  /**
   * Turn the payload file into the .mwl with `fallocate --insert-range` (default true); false,
   * or a file system without it, copies it with the plain writer. Same bytes either way.
   */
  inPlace?: boolean;
  progress?: Progress;
}

export interface PackResult {
  path: string;
  manifest: LayerManifest;
  size: number;
  payloadOffset: number;
  payloadSize: number;
  verityOffset: number;
  veritySize: number;
}

export function defaultEpoch(): number {
  const env = process.env.SOURCE_DATE_EPOCH;
  if (env === undefined || env === '') return 0;
  const n = Number(env);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new LayerError('E_EPOCH_INVALID', `SOURCE_DATE_EPOCH=${env} is not a non-negative integer`);
  return n;
}

async function readSource(o: PackOptions): Promise<unknown> {
  if (o.manifest !== undefined) return o.manifest;
  const p = join(o.dir, 'layer.json');
  const bytes = await readSourceFile(p, 'manifest', MAX_MANIFEST, 'E_MANIFEST_TOO_LARGE');
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new LayerError('E_MANIFEST_JSON', `${p} is not JSON: ${(e as Error).message}`, {
      path: p,
      cause: e,
    });
  }
}

/** A source file, refused by type before any read (a FIFO named layer.json would hang pack). */
function readSourceFile(
  path: string,
  what: string,
  maxBytes: number,
  tooLargeCode: LayerCode,
): Promise<Buffer> {
  return readRegularFile(path, {
    what,
    readCode: 'E_PACK_INPUT',
    maxBytes,
    tooLargeCode,
    error: (code, message, options) => new LayerError(code, message, options),
  });
}

async function optionalFile(path: string, maxBytes: number): Promise<Buffer | undefined> {
  const there = await lstat(path).then(
    () => true,
    (e: NodeJS.ErrnoException) => e.code !== 'ENOENT',
  );
  return there ? readSourceFile(path, 'policy module', maxBytes, 'E_LAYER_MEMBER_SIZE') : undefined;
}

/**
 * mkfs.erofs straight from the tree: with --ignore-mtime every inode gets the -T time and
 * --all-root fixes ownership, so (unlike imagebuild's makeErofs) no clamped copy of the tree
 * is needed — checked by the determinism test on trees with different mtimes. Padded to 4 KiB.
 */
async function buildErofs(rootfs: string, out: string, epoch: number, onSpawn: () => void): Promise<number> {
  await run(
    'mkfs.erofs',
    [
      `-T${epoch}`,
      '--ignore-mtime',
      '--all-root',
      '-U00000000-0000-0000-0000-000000000000',
      '--quiet',
      out,
      rootfs,
    ],
    {
      timeout: 600_000,
      env: { SOURCE_DATE_EPOCH: String(epoch) },
      onSpawn,
    },
  );
  const size = (await stat(out)).size;
  const padded = Math.ceil(size / BLOCK_SIZE) * BLOCK_SIZE;
  if (padded !== size) await truncate(out, padded);
  return padded;
}

interface PayloadFacts {
  size: number;
  rootHash: string;
  salt: string;
  dataBlocks: number;
  hashSize: number;
}

function layerManifest(
  source: SourceManifest,
  epoch: number,
  p: PayloadFacts,
  policyBytes: Buffer | undefined,
): LayerManifest {
  // `$schema` is for the editor of the source; the signed manifest has a schema of its own.
  const { $schema: _, ...rest } = source;
  return {
    ...rest,
    created: new Date(epoch * 1000).toISOString(),
    payload: {
      filesystem: 'erofs',
      size: p.size,
      verity: {
        rootHash: p.rootHash,
        salt: p.salt,
        dataBlocks: p.dataBlocks,
        hashSize: p.hashSize,
        algorithm: 'sha256',
        dataBlockSize: BLOCK_SIZE,
        hashBlockSize: BLOCK_SIZE,
      },
    },
    ...(policyBytes === undefined
      ? {}
      : {
          policy: {
            sha256: createHash('sha256').update(policyBytes).digest('hex'),
            size: policyBytes.length,
          },
        }),
  };
}

/** Builds and signs a layer; see doc/layer-format.md. */
export async function packLayer(o: PackOptions): Promise<PackResult> {
  const epoch = o.sourceDateEpoch ?? defaultEpoch();
  const progress = o.progress;
  const source = validateManifest(await readSource(o), { source: true });
  checkSigner(o.key, o.chain, o.hedged === true); // before mkfs.erofs and the hashing, not after
  const rootfs = join(o.dir, 'rootfs');
  try {
    if (!(await stat(rootfs)).isDirectory()) throw new Error('not a directory');
  } catch (e) {
    throw new LayerError('E_PACK_INPUT', `${rootfs} is not a directory: ${(e as Error).message}`, {
      path: rootfs,
      cause: e,
    });
  }
  const policyBytes = await optionalFile(join(o.dir, 'policy.cil'), MAX_POLICY);
  if (policyBytes !== undefined && policyBytes.length === 0)
    throw new LayerError('E_PACK_INPUT', 'policy.cil is empty');
  if (policyBytes !== undefined) {
    progress?.step('checking policy.cil with secilc');
    await checkPolicy(policyBytes, join(o.dir, 'policy.cil'), source.name);
  }
  const inPlace = o.inPlace !== false;
  const work = await mkdtemp(join(dirname(o.out), `.${basename(o.out)}.work-`)).catch((e: unknown) => {
    throw new LayerError('E_LAYER_WRITE', `Cannot write ${o.out}: ${writeFailure(e)}`, {
      path: o.out,
      cause: e,
    });
  });
  let writeBack: Promise<void> | undefined;
  let shifted: Promise<boolean> | undefined;
  /** Set when pack fails: a shift not yet started is then not started at all. */
  let abandoned = false;
  try {
    const payloadPath = join(work, 'payload.erofs');
    progress?.step('checking rootfs');
    checkTreeSync(rootfs);
    progress?.step('building erofs payload');
    const cpu = sampleCpuIdle();
    // The signing key's expansion (about 40 % of signing's cost in a fresh process, where it
    // also compiles code signing runs) is done while mkfs.erofs runs; should it fail,
    // signManifest expands the key again and reports the failure there.
    let expanded: ExpandedKey | undefined;
    // The payload's write-back (which insert-range waits for) starts while mkfs.erofs writes.
    let building = true;
    let earlyWriteBack: Promise<void> | undefined;
    const size = await buildErofs(rootfs, payloadPath, epoch, () => {
      if (inPlace) earlyWriteBack = writeBackWhile(payloadPath, () => building);
      if (o.hedged === true) return;
      try {
        expanded = expandSigningKey(o.key);
      } catch {
        expanded = undefined;
      }
    }).finally(() => {
      building = false;
    });
    await earlyWriteBack;
    // Hash on every core only when one was left idle while mkfs.erofs ran: on a machine whose
    // cores are all taken, the worker's start-up and hand-offs cost more than it saves.
    const idle = cpu.idleCores();
    const threads = idle === undefined || idle >= 0.5 ? undefined : 1;
    const dataBlocks = size / BLOCK_SIZE;
    // The in-place writer's insert-range must first write the payload back: start that now.
    writeBack = inPlace ? startWriteBack(payloadPath) : undefined;
    let writtenBack = false;
    void writeBack?.then(() => {
      writtenBack = true;
    });
    // Salt and UUID derive from name, version and SOURCE_DATE_EPOCH: a reproducible tree.
    const seed = `${source.name}\0${source.version}\0${epoch}`;
    const salt = Buffer.from(deriveVeritySalt(seed, 'mwl-payload'));
    const uuid = deriveVerityUuid(seed, 'mwl-payload');
    // formats/verity hashes the payload on every core and builds the hash area in memory.
    progress?.step(
      `hashing payload and building the verity tree (${threads === 1 ? 'one thread' : 'all cores'})`,
    );
    const hashed = await buildPayloadVerity(payloadPath, {
      ...(threads === undefined ? {} : { threads }),
      dataBlocks,
      salt,
      uuid: uuidToBytes(uuid),
      progress,
    });
    progress?.step('signing manifest');
    const manifest = layerManifest(
      source,
      epoch,
      {
        size,
        rootHash: hashed.rootHash,
        salt: salt.toString('hex'),
        dataBlocks,
        hashSize: hashed.area.length,
      },
      policyBytes,
    );
    const json = manifestJson(manifest);
    const canonical = canonicalJson(json);
    parseManifest(canonical); // the packed manifest must pass the reader's checks
    const lj = manifestMember(canonical);
    const payloadOffset = payloadOffsetFor(lj.length);
    // In place, the payload is shifted (insert-range: the kernel drops the payload's page
    // cache, which costs more than signing) as soon as its write-back is done, and signing
    // runs meanwhile; with the write-back still going, signing runs while it finishes.
    if (inPlace) {
      let started = (): void => {};
      const spawned = new Promise<void>((r) => {
        started = r;
      });
      shifted = (writeBack ?? Promise.resolve()).then(() =>
        abandoned ? false : shiftPayload(payloadPath, payloadOffset, started),
      );
      if (writtenBack) await Promise.race([spawned, shifted]);
    }
    const signature = signManifest(json, {
      key: o.key,
      chain: o.chain,
      now: new Date(epoch * 1000),
      hedged: o.hedged === true,
      ...(expanded === undefined ? {} : { expanded }),
    });
    const sigBytes = canonicalJson(signature);
    const members: MwlMember[] = [
      { name: 'layer.json', data: lj, size: lj.length },
      { name: 'payload.erofs', file: payloadPath, size },
      { name: 'payload.verity', data: hashed.area, size: hashed.area.length },
    ];
    if (policyBytes !== undefined)
      members.push({ name: 'policy.cil', data: policyBytes, size: policyBytes.length });
    members.push({ name: 'signature.1.json', data: sigBytes, size: sigBytes.length });
    let inPlaceDone = false;
    if (shifted !== undefined) {
      progress?.step('payload write-back and shift');
      inPlaceDone = await shifted;
    }
    progress?.step('writing layer');
    if (inPlaceDone) await writeAroundPayload(payloadPath, payloadOffset, o.out, members, epoch);
    else await writeMwl(o.out, members, epoch, progress);
    progress?.done();
    return {
      path: o.out,
      manifest,
      size: (await stat(o.out)).size,
      payloadOffset,
      payloadSize: size,
      verityOffset: payloadOffset + size + BLOCK,
      veritySize: hashed.area.length,
    };
  } catch (e) {
    abandoned = true;
    throw e;
  } finally {
    await writeBack;
    await shifted;
    await rm(work, { recursive: true, force: true });
  }
}
