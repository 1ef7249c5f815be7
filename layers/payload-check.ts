// The full integrity check of a layer's payload, in place inside the .mwl: the payload's
// SHA-256, and its dm-verity tree rebuilt from the data and compared byte for byte with
// payload.verity (superblock included), whose root must be the signed root hash. A layer
// that passes is exactly what the kernel's dm-verity will accept.
import { createHash, hash } from 'node:crypto';
import { readSync, readvSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import {
  decodeVeritySuperblock,
  encodeVeritySuperblock,
  verityDigest,
  verityGeometry,
} from '../formats/index.ts';
import type { Progress } from '../common/index.ts';
import { type LayerFile, openLayerFile } from './layer-file.ts';
import { LayerError } from './layer-error.ts';
import { type DigestWorker, RingWriter, ringBytes, slotViews, startDigestWorker } from './payload-digest.ts';

const BS = 4096;
const CHUNK = 512; // blocks per read: 2 MiB

async function readExact(
  fh: FileHandle,
  buf: Buffer,
  length: number,
  pos: number,
  path: string,
): Promise<void> {
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, pos + got);
    if (bytesRead === 0)
      throw new LayerError('E_LAYER_TRUNCATED', `${path} ends at byte ${pos + got}`, { path });
    got += bytesRead;
  }
}

/** Checks the verity superblock against the manifest (cheap; always done). */
export async function checkVeritySuperblock(layer: LayerFile): Promise<Uint8Array> {
  const fh = await openLayerFile(layer.path);
  try {
    const sbBlock = Buffer.alloc(BS);
    await readExact(fh, sbBlock, BS, layer.verityOffset, layer.path);
    const v = layer.manifest.payload.verity;
    let sb: ReturnType<typeof decodeVeritySuperblock>;
    try {
      sb = decodeVeritySuperblock(sbBlock);
    } catch (e) {
      throw new LayerError(
        'E_VERITY_SUPERBLOCK',
        `${layer.path}: payload.verity has no valid verity superblock: ${(e as Error).message}`,
        { path: layer.path, cause: e },
      );
    }
    if (
      sb.dataBlocks !== v.dataBlocks ||
      Buffer.from(sb.salt).toString('hex') !== v.salt ||
      sb.dataBlockSize !== BS ||
      sb.hashBlockSize !== BS
    ) {
      throw new LayerError(
        'E_VERITY_SUPERBLOCK',
        `${layer.path}: payload.verity superblock (blocks ${sb.dataBlocks}, salt ${Buffer.from(sb.salt).toString('hex')}) differs from the manifest`,
        { path: layer.path },
      );
    }
    return sb.uuid;
  } finally {
    await fh.close();
  }
}

/** Below 16 MiB a worker's start-up costs more than it saves. */
export const WORKER_MIN_BLOCKS = 4096;

export interface PayloadHashes {
  /** SHA-256 of the whole payload, hex. */
  sha256: string;
  /** The complete dm-verity hash area (superblock block + tree), as veritysetup writes it. */
  area: Buffer;
  rootHash: string;
}

export interface HashPayloadOptions {
  /** Byte offset of the payload in `fd`'s file. */
  offset: number;
  dataBlocks: number;
  salt: Buffer;
  uuid: Uint8Array;
  /** For messages. */
  path: string;
  progress?: Progress | undefined;
  /**
   * A started digest worker (pack starts it early, to hide its start-up). Without it, large
   * payloads get a worker of their own and small ones are digested on this thread.
   */
  worker?: DigestWorker;
}

/** Slots in the ring shared with the digest worker: enough that neither side waits often. */
const SLOTS = 4;

/**
 * One read of `dataBlocks` blocks at byte `offset` of `fd`: the payload SHA-256 and every
 * verity digest (see payload-digest.ts); then the whole hash area built in memory. Used by
 * pack (offset 0 of the erofs file) and by verify (in place inside the .mwl).
 */
export async function hashPayload(fd: number, o: HashPayloadOptions): Promise<PayloadHashes> {
  const { offset, dataBlocks, salt, uuid, path, progress } = o;
  const geo = verityGeometry(dataBlocks);
  const level0 = Buffer.alloc(dataBlocks * 32);
  const worker = o.worker ?? (dataBlocks >= WORKER_MIN_BLOCKS ? startDigestWorker() : undefined);
  // A small payload gets buffers its own size, not 2 MiB: the agent checks many small layers
  // at boot and each check's buffers would otherwise stay in its RSS.
  const chunk = Math.max(1, Math.min(CHUNK, dataBlocks));
  const layout = { chunkBlocks: chunk, blockSize: BS, saltLength: salt.length, slots: worker ? SLOTS : 1 };
  const ring = worker === undefined ? undefined : new RingWriter(layout);
  const arena = ring?.arena ?? new ArrayBuffer(ringBytes(layout));
  const views = Array.from({ length: layout.slots }, (_, k) => slotViews(arena, layout, k));
  for (const v of views) for (const s of v.salted) s.set(salt, 0);
  const sha = worker?.run({
    layout,
    arena: ring?.arena as SharedArrayBuffer,
    state: ring?.stateBuffer as SharedArrayBuffer,
    dataBlocks,
    path,
  });
  const whole = worker === undefined ? createHash('sha256') : undefined;
  try {
    for (let c = 0, first = 0; first < dataBlocks; c++, first += chunk) {
      const k = c % layout.slots;
      // A failed worker: stop reading; its error comes out of `sha` below.
      if (ring !== undefined && !(await ring.acquire(k, path))) break;
      const { salted, blocks } = views[k] as { salted: Buffer[]; blocks: Buffer[] };
      const n = Math.min(chunk, dataBlocks - first);
      const pos = offset + first * BS;
      // One readv per chunk straight into the salt-prefixed slots: no copy.
      let got = readvSync(fd, blocks.slice(0, n), pos);
      while (got < n * BS) {
        const i = Math.floor(got / BS);
        const r = readSync(fd, blocks[i] as Buffer, got % BS, BS - (got % BS), pos + got);
        if (r === 0) throw new LayerError('E_LAYER_TRUNCATED', `${path} ends at byte ${pos + got}`, { path });
        got += r;
      }
      ring?.publish(k);
      for (let i = 0; i < n; i++) {
        whole?.update(blocks[i] as Buffer);
        // A 'binary' string written back measured faster than a Buffer result (fewer allocations).
        level0.write(hash('sha256', salted[i] as Buffer, 'binary'), (first + i) * 32, 32, 'latin1');
      }
      progress?.bytes((first + n) * BS, dataBlocks * BS);
    }
  } catch (e) {
    ring?.abort();
    worker?.stop();
    throw e;
  }
  // The hash area: superblock block, then levels (top first on disk).
  const area = Buffer.alloc(geo.hashSize);
  area.set(
    encodeVeritySuperblock({
      uuid,
      algorithm: 'sha256',
      dataBlockSize: BS,
      hashBlockSize: BS,
      dataBlocks,
      salt,
    }),
    0,
  );
  let digests: Buffer = level0;
  for (const l of geo.levels) {
    area.set(digests, l.firstBlock * BS);
    const next = Buffer.alloc(l.blocks * 32);
    for (let j = 0; j < l.blocks; j++) {
      const start = (l.firstBlock + j) * BS;
      next.set(verityDigest(salt, area.subarray(start, start + BS)), j * 32);
    }
    digests = next;
  }
  const sha256 = whole !== undefined ? whole.digest('hex') : await (sha as Promise<string>);
  return { sha256, area, rootHash: digests.subarray(0, 32).toString('hex') };
}

/** Full check; throws E_PAYLOAD_DIGEST, E_VERITY_TREE_MISMATCH or E_VERITY_ROOT_MISMATCH. */
export async function checkPayload(layer: LayerFile, progress?: Progress): Promise<void> {
  const uuid = await checkVeritySuperblock(layer);
  const v = layer.manifest.payload.verity;
  const salt = Buffer.from(v.salt, 'hex');
  const geo = verityGeometry(v.dataBlocks);
  const fh = await openLayerFile(layer.path);
  try {
    const { sha256, area, rootHash } = await hashPayload(fh.fd, {
      offset: layer.payloadOffset,
      dataBlocks: v.dataBlocks,
      salt,
      uuid,
      path: layer.path,
      progress,
    });
    if (sha256 !== layer.manifest.payload.sha256) {
      throw new LayerError(
        'E_PAYLOAD_DIGEST',
        `${layer.path}: payload.erofs does not match the signed SHA-256`,
        {
          path: layer.path,
          details: { member: 'payload.erofs' },
        },
      );
    }
    const root = rootHash;
    if (root !== v.rootHash) {
      // Cannot happen when the payload digest matched and the signed manifest is consistent.
      throw new LayerError(
        'E_VERITY_ROOT_MISMATCH',
        `${layer.path}: the payload's verity root ${root} is not the signed ${v.rootHash}`,
        { path: layer.path },
      );
    }
    const stored = Buffer.alloc(Math.min(CHUNK * BS, geo.hashSize));
    for (let off = 0; off < geo.hashSize; off += CHUNK * BS) {
      const n = Math.min(CHUNK * BS, geo.hashSize - off);
      await readExact(fh, stored, n, layer.verityOffset + off, layer.path);
      const want = area.subarray(off, off + n);
      if (!stored.subarray(0, n).equals(want)) {
        let i = 0;
        while (stored[i] === want[i]) i++;
        const block = Math.floor((off + i) / BS);
        throw new LayerError(
          'E_VERITY_TREE_MISMATCH',
          `${layer.path}: payload.verity hash block ${block} differs from the tree of the payload`,
          { path: layer.path, details: { member: 'payload.verity', block } },
        );
      }
    }
  } finally {
    await fh.close();
  }
}
