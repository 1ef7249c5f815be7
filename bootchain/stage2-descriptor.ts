// The stage-2 descriptor (doc/stage2-format.md): what the vendor signs for one boot slot, in
// the spirit of Android AVB's vbmeta — a fixed-layout binary header naming the version, the
// rollback index, the size and sha256 of the kernel and of the initramfs, the CoreOS root hash
// and the command line, followed by an ML-DSA signature over those 4096 bytes with the context
// `milkyway/v1/stage2`. The layout is declared once here; the C verifier that runs in stage 1
// (bootchain/verifier/stage2.c) reads the same offsets and refuses in the same order, so a
// byte the TypeScript reader refuses is refused by stage 1 with the same code (the tests
// flip every byte and compare).
//
// The boot partition is: header (4 KiB) · signature, zero-padded to 12 KiB · kernel at 12 KiB ·
// initramfs at the next 4 KiB boundary. Offsets are in the header, but a reader accepts only
// these: a fixed layout leaves no room for overlapping or hidden parts.
import { createHash } from 'node:crypto';
import { fieldTable } from '../formats/index.ts';
import { BootchainError } from './bootchain-error.ts';

export const STAGE2_MAGIC = 'MWSTAGE2';
export const STAGE2_FORMAT = 1;
export const HEADER_SIZE = 4096;
export const SIGNATURE_AREA = 8192;
export const KERNEL_OFFSET = HEADER_SIZE + SIGNATURE_AREA;
export const CMDLINE_MAX = 2048;
export const KERNEL_MAX = 64 << 20;
export const INITRD_MAX = 256 << 20;
export const ALIGN = 4096;

/** ML-DSA parameter sets by their field value, with FIPS 204 key and signature sizes. */
export const STAGE2_ALGORITHMS = {
  44: { name: 'ml-dsa-44', publicKey: 1312, signature: 2420 },
  65: { name: 'ml-dsa-65', publicKey: 1952, signature: 3309 },
  87: { name: 'ml-dsa-87', publicKey: 2592, signature: 4627 },
} as const;
export type Stage2Algorithm = keyof typeof STAGE2_ALGORITHMS;

const S = 'doc/stage2-format.md';
export const STAGE2_HEADER = fieldTable('stage-2 descriptor', HEADER_SIZE, [
  { name: 'magic', offset: 0, size: 8, type: 'text', value: STAGE2_MAGIC, spec: `${S}: magic` },
  { name: 'format', offset: 8, size: 4, type: 'u32', value: STAGE2_FORMAT, spec: `${S}: format version` },
  { name: 'algorithm', offset: 12, size: 4, type: 'u32', spec: `${S}: ML-DSA parameter set (44, 65, 87)` },
  { name: 'rollbackIndex', offset: 16, size: 8, type: 'u64', spec: `${S}: rollback index` },
  { name: 'created', offset: 24, size: 8, type: 'u64', spec: `${S}: signing time, Unix seconds` },
  { name: 'keyId', offset: 32, size: 32, type: 'bytes', spec: `${S}: sha256 of the signer's raw public key` },
  { name: 'name', offset: 64, size: 32, type: 'text', spec: `${S}: image name, NUL-padded` },
  { name: 'version', offset: 96, size: 32, type: 'text', spec: `${S}: image version, NUL-padded` },
  { name: 'kernelOffset', offset: 128, size: 8, type: 'u64', spec: `${S}: kernel offset (12288)` },
  { name: 'kernelSize', offset: 136, size: 8, type: 'u64', spec: `${S}: kernel size` },
  { name: 'kernelSha256', offset: 144, size: 32, type: 'bytes', spec: `${S}: kernel sha256` },
  { name: 'initrdOffset', offset: 176, size: 8, type: 'u64', spec: `${S}: initramfs offset` },
  { name: 'initrdSize', offset: 184, size: 8, type: 'u64', spec: `${S}: initramfs size` },
  { name: 'initrdSha256', offset: 192, size: 32, type: 'bytes', spec: `${S}: initramfs sha256` },
  { name: 'rootHash', offset: 224, size: 32, type: 'bytes', spec: `${S}: CoreOS dm-verity root hash` },
  { name: 'cmdlineLength', offset: 256, size: 4, type: 'u32', spec: `${S}: command line bytes` },
  { name: 'reserved1', offset: 260, size: 12, type: 'reserved', spec: `${S}: zero` },
  { name: 'cmdline', offset: 272, size: CMDLINE_MAX, type: 'text', spec: `${S}: command line, NUL-padded` },
  { name: 'reserved2', offset: 2320, size: HEADER_SIZE - 2320, type: 'reserved', spec: `${S}: zero` },
]);

export interface Stage2Descriptor {
  algorithm: Stage2Algorithm;
  rollbackIndex: bigint;
  created: bigint;
  keyId: string;
  name: string;
  version: string;
  kernel: { offset: number; size: number; sha256: string };
  initrd: { offset: number; size: number; sha256: string };
  rootHash: string;
  cmdline: string;
}

const PRINTABLE = /^[\x20-\x7e]*$/;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());
export const alignUp = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;

/** The offset of the initramfs for a kernel of `kernelSize` bytes (the fixed layout). */
export function initrdOffsetFor(kernelSize: number): number {
  return alignUp(KERNEL_OFFSET + kernelSize);
}

/** Parameters stage 1 owns on the final command line; a descriptor may not set them. */
export const STAGE1_PARAMS = ['mway.certs=', 'mway.slot=', 'mway.stage1='] as const;

function refuse(code: ConstructorParameters<typeof BootchainError>[0], message: string): never {
  throw new BootchainError(code, message);
}

/** Checks a NUL-padded text field: printable ASCII, then only zeros. */
function textField(bytes: Uint8Array, name: 'name' | 'version' | 'cmdline', at: string): string {
  const raw = STAGE2_HEADER.raw(bytes, name);
  const nul = raw.indexOf(0);
  const end = nul < 0 ? raw.length : nul;
  if (raw.subarray(end).some((b) => b !== 0))
    refuse('E_DESC_FIELD', `${at}: ${name} has non-zero bytes after its end`);
  const s = Buffer.from(raw.subarray(0, end)).toString('latin1');
  if (!PRINTABLE.test(s)) refuse('E_DESC_FIELD', `${at}: ${name} is not printable ASCII`);
  return s;
}

/** The 4096-byte header for `d` (unsigned). */
export function encodeStage2Header(d: Stage2Descriptor): Uint8Array {
  const bad = (why: string): never => refuse('E_DESC_INPUT', `Cannot write the stage-2 descriptor: ${why}`);
  for (const [k, v, max] of [
    ['name', d.name, 31],
    ['version', d.version, 31],
    ['cmdline', d.cmdline, CMDLINE_MAX - 1],
  ] as const)
    if (v.length > max || !PRINTABLE.test(v) || (k !== 'cmdline' && v === ''))
      bad(`${k} ${JSON.stringify(v)}`);
  if (!/^[0-9a-f]{64}$/.test(d.rootHash)) bad(`root hash ${JSON.stringify(d.rootHash)}`);
  if (!(d.algorithm in STAGE2_ALGORITHMS)) bad(`algorithm ${d.algorithm}`);
  return STAGE2_HEADER.encode({
    algorithm: d.algorithm,
    rollbackIndex: d.rollbackIndex,
    created: d.created,
    keyId: Buffer.from(d.keyId, 'hex'),
    name: d.name,
    version: d.version,
    kernelOffset: BigInt(d.kernel.offset),
    kernelSize: BigInt(d.kernel.size),
    kernelSha256: Buffer.from(d.kernel.sha256, 'hex'),
    initrdOffset: BigInt(d.initrd.offset),
    initrdSize: BigInt(d.initrd.size),
    initrdSha256: Buffer.from(d.initrd.sha256, 'hex'),
    rootHash: Buffer.from(d.rootHash, 'hex'),
    cmdlineLength: Buffer.byteLength(d.cmdline, 'latin1'),
    cmdline: d.cmdline,
  });
}

/**
 * Decodes the header fields that come before the signature check: length, magic, format,
 * algorithm. The rest is read by `decodeSignedHeader` only once the signature verified.
 */
export function decodeStage2Prefix(
  image: Uint8Array,
  at = 'stage 2',
): { algorithm: Stage2Algorithm; keyId: string } {
  if (image.length < KERNEL_OFFSET)
    refuse(
      'E_DESC_TRUNCATED',
      `${at}: ${image.length} bytes, the descriptor and its signature need ${KERNEL_OFFSET}`,
    );
  if (Buffer.from(STAGE2_HEADER.raw(image, 'magic')).toString('latin1') !== STAGE2_MAGIC)
    refuse('E_DESC_MAGIC', `${at}: no ${STAGE2_MAGIC} descriptor`);
  const format = STAGE2_HEADER.read(image, 'format') as number;
  if (format !== STAGE2_FORMAT)
    refuse('E_DESC_VERSION', `${at}: descriptor format ${format}, this reader knows ${STAGE2_FORMAT}`);
  const algorithm = STAGE2_HEADER.read(image, 'algorithm') as number;
  if (!(algorithm in STAGE2_ALGORITHMS))
    refuse('E_DESC_ALGORITHM', `${at}: algorithm ${algorithm} is not ML-DSA-44/65/87`);
  return { algorithm: algorithm as Stage2Algorithm, keyId: hex(STAGE2_HEADER.raw(image, 'keyId')) };
}

/**
 * Decodes the signed header strictly (after the signature verified): the signature area's
 * padding, reserved bytes, text fields, the fixed layout against `partitionSize`, and the
 * command line's root hash and stage-1 parameters.
 */
export function decodeSignedHeader(
  image: Uint8Array,
  partitionSize: number,
  at = 'stage 2',
): Stage2Descriptor {
  const { algorithm, keyId } = decodeStage2Prefix(image, at);
  const sigLen = STAGE2_ALGORITHMS[algorithm].signature;
  if (image.subarray(HEADER_SIZE + sigLen, KERNEL_OFFSET).some((b) => b !== 0))
    refuse('E_DESC_LAYOUT', `${at}: the signature area is not zero after the ${sigLen}-byte signature`);
  const reserved = STAGE2_HEADER.nonZeroReserved(image);
  if (reserved.length > 0)
    refuse('E_DESC_FIELD', `${at}: reserved bytes ${reserved.join(', ')} are not zero`);
  const name = textField(image, 'name', at);
  const version = textField(image, 'version', at);
  const cmdline = textField(image, 'cmdline', at);
  const h = STAGE2_HEADER.decode(image);
  if (name === '' || version === '') refuse('E_DESC_FIELD', `${at}: name and version must not be empty`);
  if (h.cmdlineLength !== cmdline.length)
    refuse('E_DESC_FIELD', `${at}: cmdline length ${h.cmdlineLength}, the text is ${cmdline.length} bytes`);
  const ks = h.kernelSize;
  const is = h.initrdSize;
  if (h.kernelOffset !== BigInt(KERNEL_OFFSET) || ks === 0n || ks > BigInt(KERNEL_MAX))
    refuse(
      'E_DESC_LAYOUT',
      `${at}: kernel at ${h.kernelOffset}, ${ks} bytes (expected at ${KERNEL_OFFSET}, 1 to ${KERNEL_MAX} bytes)`,
    );
  const io = initrdOffsetFor(Number(ks));
  if (h.initrdOffset !== BigInt(io) || is === 0n || is > BigInt(INITRD_MAX))
    refuse(
      'E_DESC_LAYOUT',
      `${at}: initramfs at ${h.initrdOffset}, ${is} bytes (expected at ${io}, 1 to ${INITRD_MAX} bytes)`,
    );
  if (io + Number(is) > partitionSize)
    refuse(
      'E_DESC_LAYOUT',
      `${at}: the initramfs ends at ${io + Number(is)}, the partition has ${partitionSize} bytes`,
    );
  const rootHash = hex(h.rootHash);
  const words = cmdline.split(' ');
  if (
    words.filter((w) => w === `mway.roothash=${rootHash}`).length !== 1 ||
    words.filter((w) => w.startsWith('mway.roothash=')).length !== 1
  )
    refuse('E_DESC_CMDLINE', `${at}: the command line must carry mway.roothash=${rootHash} exactly once`);
  for (const p of STAGE1_PARAMS)
    if (words.some((w) => w.startsWith(p)))
      refuse('E_DESC_CMDLINE', `${at}: the command line sets ${p}, which stage 1 owns`);
  return {
    algorithm,
    rollbackIndex: h.rollbackIndex,
    created: h.created,
    keyId,
    name,
    version,
    kernel: { offset: KERNEL_OFFSET, size: Number(ks), sha256: hex(h.kernelSha256) },
    initrd: { offset: io, size: Number(is), sha256: hex(h.initrdSha256) },
    rootHash,
    cmdline,
  };
}

/** The key id a descriptor names: sha256 of the raw ML-DSA public key, hex. */
export function keyIdOf(publicKey: Uint8Array): string {
  return hex(sha256(publicKey));
}

/** Lays out a whole boot partition image: header, `signature`, kernel, initramfs (4 KiB padded). */
export function assembleStage2(
  header: Uint8Array,
  signature: Uint8Array,
  kernel: Uint8Array,
  initrd: Uint8Array,
): Uint8Array {
  if (signature.length > SIGNATURE_AREA)
    refuse('E_DESC_INPUT', `A ${signature.length}-byte signature does not fit in ${SIGNATURE_AREA}`);
  const io = initrdOffsetFor(kernel.length);
  const out = new Uint8Array(alignUp(io + initrd.length));
  out.set(header, 0);
  out.set(signature, HEADER_SIZE);
  out.set(kernel, KERNEL_OFFSET);
  out.set(initrd, io);
  return out;
}

/** Digests of a kernel and initramfs as the descriptor records them. */
export function partsOf(kernel: Uint8Array, initrd: Uint8Array): Pick<Stage2Descriptor, 'kernel' | 'initrd'> {
  return {
    kernel: { offset: KERNEL_OFFSET, size: kernel.length, sha256: hex(sha256(kernel)) },
    initrd: { offset: initrdOffsetFor(kernel.length), size: initrd.length, sha256: hex(sha256(initrd)) },
  };
}
