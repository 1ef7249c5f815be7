// The shape of a dm-verity format-1 hash tree as veritysetup lays it out (cryptsetup
// lib/verity/verity_hash.c): superblock block, then levels top first, level 0 last.
import { BLOCK_SIZE } from '../block-size.ts';
import { FormatError } from '../format-error.ts';

export const VERITY_DIGEST_SIZE = 32;
/** Digests per 4096-byte hash block (sha256). */
export const VERITY_FANOUT = BLOCK_SIZE / VERITY_DIGEST_SIZE;
/** 2^40 data blocks = 4 PiB: far beyond any disk we build, and keeps arithmetic exact. */
export const VERITY_MAX_DATA_BLOCKS = 2 ** 40;

export interface VerityLevel {
  /** 0 = the level hashing data blocks. */
  level: number;
  /** Number of 4096-byte hash blocks in this level. */
  blocks: number;
  /** Index of its first block in the hash area (block 0 = superblock). */
  firstBlock: number;
  /** Number of digests this level holds (children it covers). */
  entries: number;
}

export interface VerityGeometry {
  dataBlocks: number;
  /** Indexed by level number: levels[0] hashes the data. */
  levels: VerityLevel[];
  /** Hash area size in bytes, superblock included. */
  hashSize: number;
}

/** Computes the tree layout for `dataBlocks` 4096-byte data blocks. */
export function verityGeometry(dataBlocks: number): VerityGeometry {
  if (!Number.isSafeInteger(dataBlocks) || dataBlocks < 1 || dataBlocks > VERITY_MAX_DATA_BLOCKS) {
    throw new FormatError(
      'E_VERITY_BAD_SIZE',
      `Cannot lay out verity tree: data blocks is ${dataBlocks}, expected 1 to ${VERITY_MAX_DATA_BLOCKS}`,
    );
  }
  // Smallest L with (N - 1) >> (7 L) == 0, in exact float arithmetic (N < 2^53).
  let count = 0;
  const entriesPer: number[] = [];
  let entries = dataBlocks;
  while (Math.floor((dataBlocks - 1) / VERITY_FANOUT ** count) !== 0) {
    entriesPer.push(entries);
    entries = Math.ceil(entries / VERITY_FANOUT);
    count++;
  }
  const levels: VerityLevel[] = [];
  let next = 1;
  for (let i = count - 1; i >= 0; i--) {
    const e = entriesPer[i] ?? 0;
    const blocks = Math.ceil(e / VERITY_FANOUT);
    levels[i] = { level: i, blocks, firstBlock: next, entries: e };
    next += blocks;
  }
  return { dataBlocks, levels, hashSize: next * BLOCK_SIZE };
}
