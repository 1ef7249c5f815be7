// The 512-byte veritysetup superblock at the start of a hash area (cryptsetup
// lib/verity/verity.c `struct verity_sb`, little-endian), padded to a 4096-byte block.
import { toHex, view } from '../../common/index.ts';
import { FormatError } from '../format-error.ts';
import { VERITY_BLOCK_SIZE, VERITY_MAX_DATA_BLOCKS } from './verity-geometry.ts';

export const VERITY_MAGIC = 'verity\0\0';
export const VERITY_SB_SIZE = 512;
const OFF_VERSION = 8;
const OFF_HASH_TYPE = 12;
const OFF_UUID = 16;
const OFF_ALGORITHM = 32;
const ALGORITHM_SIZE = 32;
const OFF_DATA_BLOCK_SIZE = 64;
const OFF_HASH_BLOCK_SIZE = 68;
const OFF_DATA_BLOCKS = 72;
const OFF_SALT_SIZE = 80;
const OFF_SALT = 88;
export const VERITY_MAX_SALT = 256;

export interface VeritySuperblock {
  /** 16 bytes, stored as-is (RFC 4122 byte order). */
  uuid: Uint8Array;
  algorithm: 'sha256';
  dataBlockSize: number;
  hashBlockSize: number;
  dataBlocks: number;
  salt: Uint8Array;
}

/** Encodes a superblock into a full zero-padded 4096-byte hash block. */
export function encodeVeritySuperblock(sb: VeritySuperblock): Uint8Array {
  if (sb.uuid.length !== 16) throw new RangeError(`Expected uuid of 16 bytes, got ${sb.uuid.length}`);
  if (sb.salt.length > VERITY_MAX_SALT) {
    throw new FormatError(
      'E_VERITY_BAD_SALT',
      `Cannot encode verity superblock: salt is ${sb.salt.length} bytes, at most 256`,
    );
  }
  const out = new Uint8Array(VERITY_BLOCK_SIZE);
  const dv = view(out);
  out.set(new TextEncoder().encode(VERITY_MAGIC), 0);
  dv.setUint32(OFF_VERSION, 1, true);
  dv.setUint32(OFF_HASH_TYPE, 1, true);
  out.set(sb.uuid, OFF_UUID);
  out.set(new TextEncoder().encode(sb.algorithm), OFF_ALGORITHM);
  dv.setUint32(OFF_DATA_BLOCK_SIZE, sb.dataBlockSize, true);
  dv.setUint32(OFF_HASH_BLOCK_SIZE, sb.hashBlockSize, true);
  dv.setBigUint64(OFF_DATA_BLOCKS, BigInt(sb.dataBlocks), true);
  dv.setUint16(OFF_SALT_SIZE, sb.salt.length, true);
  out.set(sb.salt, OFF_SALT);
  return out;
}

function bad(code: string, message: string): FormatError {
  return new FormatError(code, `Cannot decode verity superblock: ${message}`);
}

/**
 * Decodes and validates a superblock. Only what MilkyWay writes is accepted: format 1,
 * sha256, 4096-byte blocks, salt up to 256 bytes, zero padding.
 */
export function decodeVeritySuperblock(bytes: Uint8Array): VeritySuperblock {
  if (bytes.length < VERITY_SB_SIZE)
    throw bad('E_VERITY_SB_TRUNCATED', `${bytes.length} bytes, expected 512`);
  const dv = view(bytes);
  const magic = new TextDecoder('latin1').decode(bytes.subarray(0, 8));
  if (magic !== VERITY_MAGIC)
    throw bad('E_VERITY_SB_MAGIC', `magic is ${toHex(bytes.subarray(0, 8))}, expected "verity"`);
  const version = dv.getUint32(OFF_VERSION, true);
  if (version !== 1) throw bad('E_VERITY_SB_VERSION', `version is ${version}, expected 1`);
  const hashType = dv.getUint32(OFF_HASH_TYPE, true);
  if (hashType !== 1) throw bad('E_VERITY_SB_HASH_TYPE', `hash type is ${hashType}, expected 1`);
  const algBytes = bytes.subarray(OFF_ALGORITHM, OFF_ALGORITHM + ALGORITHM_SIZE);
  const nul = algBytes.indexOf(0);
  const algorithm = new TextDecoder('latin1').decode(algBytes.subarray(0, nul < 0 ? ALGORITHM_SIZE : nul));
  if (algorithm !== 'sha256' || (nul >= 0 && algBytes.subarray(nul).some((b) => b !== 0))) {
    throw bad('E_VERITY_SB_ALGORITHM', `algorithm is ${JSON.stringify(algorithm)}, expected "sha256"`);
  }
  const dataBlockSize = dv.getUint32(OFF_DATA_BLOCK_SIZE, true);
  const hashBlockSize = dv.getUint32(OFF_HASH_BLOCK_SIZE, true);
  if (dataBlockSize !== VERITY_BLOCK_SIZE || hashBlockSize !== VERITY_BLOCK_SIZE) {
    throw bad(
      'E_VERITY_SB_BLOCK_SIZE',
      `block sizes are ${dataBlockSize}/${hashBlockSize}, expected 4096/4096`,
    );
  }
  const dataBlocks = dv.getBigUint64(OFF_DATA_BLOCKS, true);
  if (dataBlocks < 1n || dataBlocks > BigInt(VERITY_MAX_DATA_BLOCKS)) {
    throw bad(
      'E_VERITY_SB_DATA_BLOCKS',
      `data blocks is ${dataBlocks}, expected 1 to ${VERITY_MAX_DATA_BLOCKS}`,
    );
  }
  const saltSize = dv.getUint16(OFF_SALT_SIZE, true);
  if (saltSize > VERITY_MAX_SALT) throw bad('E_VERITY_SB_SALT', `salt size is ${saltSize}, at most 256`);
  const padding = [
    bytes.subarray(OFF_SALT_SIZE + 2, OFF_SALT),
    bytes.subarray(OFF_SALT + saltSize, VERITY_SB_SIZE),
  ];
  if (padding.some((p) => p.some((b) => b !== 0))) throw bad('E_VERITY_SB_PADDING', 'padding is not zero');
  return {
    uuid: bytes.slice(OFF_UUID, OFF_UUID + 16),
    algorithm: 'sha256',
    dataBlockSize,
    hashBlockSize,
    dataBlocks: Number(dataBlocks),
    salt: bytes.slice(OFF_SALT, OFF_SALT + saltSize),
  };
}
