// The 512-byte veritysetup superblock at the start of a hash area (cryptsetup
// lib/verity/verity.c `struct verity_sb`, little-endian), padded to a 4096-byte block. The
// layout is the field table below; encoder and decoder are derived from it.
import { toHex } from '../../common/index.ts';
import { fieldTable } from '../_field-table.ts';
import { BLOCK_SIZE } from '../block-size.ts';
import type { FormatCode } from '../format-codes.ts';
import { FormatError } from '../format-error.ts';
import { VERITY_MAX_DATA_BLOCKS } from './verity-geometry.ts';

export const VERITY_MAGIC = 'verity\0\0';
export const VERITY_SB_SIZE = 512;
export const VERITY_MAX_SALT = 256;

const SB = 'cryptsetup lib/verity/verity.c struct verity_sb';
/** The superblock, field by field (little-endian). */
export const VERITY_SUPERBLOCK = fieldTable('verity superblock', VERITY_SB_SIZE, [
  { name: 'signature', offset: 0, size: 8, type: 'text', value: VERITY_MAGIC, spec: `${SB}: signature` },
  { name: 'version', offset: 8, size: 4, type: 'u32', value: 1, spec: `${SB}: version` },
  { name: 'hashType', offset: 12, size: 4, type: 'u32', value: 1, spec: `${SB}: hash_type (1 = format 1)` },
  { name: 'uuid', offset: 16, size: 16, type: 'bytes', spec: `${SB}: uuid (RFC 4122 byte order)` },
  { name: 'algorithm', offset: 32, size: 32, type: 'text', spec: `${SB}: algorithm, NUL-padded` },
  { name: 'dataBlockSize', offset: 64, size: 4, type: 'u32', spec: `${SB}: data_block_size` },
  { name: 'hashBlockSize', offset: 68, size: 4, type: 'u32', spec: `${SB}: hash_block_size` },
  { name: 'dataBlocks', offset: 72, size: 8, type: 'u64', spec: `${SB}: data_blocks` },
  { name: 'saltSize', offset: 80, size: 2, type: 'u16', spec: `${SB}: salt_size` },
  { name: '_pad1', offset: 82, size: 6, type: 'reserved', spec: `${SB}: _pad1` },
  { name: 'salt', offset: 88, size: VERITY_MAX_SALT, type: 'bytes', spec: `${SB}: salt (salt_size used)` },
  { name: '_pad2', offset: 344, size: 168, type: 'reserved', spec: `${SB}: _pad2` },
]);

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
  const out = new Uint8Array(BLOCK_SIZE);
  out.set(
    VERITY_SUPERBLOCK.encode({
      uuid: sb.uuid,
      algorithm: sb.algorithm,
      dataBlockSize: sb.dataBlockSize,
      hashBlockSize: sb.hashBlockSize,
      dataBlocks: BigInt(sb.dataBlocks),
      saltSize: sb.salt.length,
      salt: sb.salt,
    }),
    0,
  );
  return out;
}

function bad(code: FormatCode, message: string): FormatError {
  return new FormatError(code, `Cannot decode verity superblock: ${message}`);
}

/**
 * Decodes and validates a superblock. Only what MilkyWay writes is accepted: format 1,
 * sha256, 4096-byte blocks, salt up to 256 bytes, zero padding.
 */
export function decodeVeritySuperblock(bytes: Uint8Array): VeritySuperblock {
  if (bytes.length < VERITY_SB_SIZE)
    throw bad('E_VERITY_SB_TRUNCATED', `${bytes.length} bytes, expected 512`);
  const f = VERITY_SUPERBLOCK.decode(bytes);
  if (f.signature !== 'verity')
    throw bad('E_VERITY_SB_MAGIC', `magic is ${toHex(bytes.subarray(0, 8))}, expected "verity"`);
  // 'verity' then two NULs: the text decoder stops at the first NUL, so check the rest is zero.
  if (
    VERITY_SUPERBLOCK.raw(bytes, 'signature')
      .subarray(6)
      .some((b) => b !== 0)
  )
    throw bad('E_VERITY_SB_MAGIC', `magic is ${toHex(bytes.subarray(0, 8))}, expected "verity"`);
  if (f.version !== 1) throw bad('E_VERITY_SB_VERSION', `version is ${f.version}, expected 1`);
  if (f.hashType !== 1) throw bad('E_VERITY_SB_HASH_TYPE', `hash type is ${f.hashType}, expected 1`);
  const algBytes = VERITY_SUPERBLOCK.raw(bytes, 'algorithm');
  const nul = algBytes.indexOf(0);
  if (f.algorithm !== 'sha256' || (nul >= 0 && algBytes.subarray(nul).some((b) => b !== 0))) {
    throw bad('E_VERITY_SB_ALGORITHM', `algorithm is ${JSON.stringify(f.algorithm)}, expected "sha256"`);
  }
  const { dataBlockSize, hashBlockSize, dataBlocks, saltSize } = f;
  if (dataBlockSize !== BLOCK_SIZE || hashBlockSize !== BLOCK_SIZE) {
    throw bad(
      'E_VERITY_SB_BLOCK_SIZE',
      `block sizes are ${dataBlockSize}/${hashBlockSize}, expected 4096/4096`,
    );
  }
  if (dataBlocks < 1n || dataBlocks > BigInt(VERITY_MAX_DATA_BLOCKS)) {
    throw bad(
      'E_VERITY_SB_DATA_BLOCKS',
      `data blocks is ${dataBlocks}, expected 1 to ${VERITY_MAX_DATA_BLOCKS}`,
    );
  }
  if (saltSize > VERITY_MAX_SALT) throw bad('E_VERITY_SB_SALT', `salt size is ${saltSize}, at most 256`);
  // Reserved fields and the unused tail of the salt field must be zero.
  if (VERITY_SUPERBLOCK.nonZeroReserved(bytes).length > 0 || f.salt.subarray(saltSize).some((b) => b !== 0))
    throw bad('E_VERITY_SB_PADDING', 'padding is not zero');
  return {
    uuid: f.uuid,
    algorithm: 'sha256',
    dataBlockSize,
    hashBlockSize,
    dataBlocks: Number(dataBlocks),
    salt: f.salt.slice(0, saltSize),
  };
}
