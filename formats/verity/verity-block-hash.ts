// The hot loop of dm-verity hashing, shared by the worker threads and the inline path:
// sha256(salt ‖ block) for a run of 4096-byte blocks read straight from a file.
import { hash } from 'node:crypto';
import { readSync, readvSync } from 'node:fs';
import { BLOCK_SIZE } from '../block-size.ts';

/**
 * Reads blocks with one readv into slots that already hold the salt, so each block is
 * hashed in place with no copy. The digest comes back as a latin1 string: measurably
 * cheaper per call in Node 24 than allocating a Buffer (1.5 vs 1.1 GB/s per core).
 */
export class BlockHasher {
  readonly #salt: Uint8Array;
  readonly #stride: number;
  readonly #slots: Buffer[];
  readonly #targets: Buffer[];

  constructor(salt: Uint8Array, maxBlocks: number) {
    this.#salt = salt;
    this.#stride = salt.length + BLOCK_SIZE;
    const arena = Buffer.alloc(this.#stride * maxBlocks);
    this.#slots = [];
    this.#targets = [];
    for (let i = 0; i < maxBlocks; i++) {
      const start = i * this.#stride;
      arena.set(salt, start);
      this.#slots.push(arena.subarray(start, start + this.#stride));
      this.#targets.push(arena.subarray(start + salt.length, start + this.#stride));
    }
  }

  /**
   * Hashes `count` blocks at byte `offset` of `fd` into `out` (count × 32 bytes).
   * Returns the number of bytes read; fewer than count × 4096 means the file ended.
   */
  hashRange(fd: number, offset: number, count: number, out: Buffer): number {
    if (count > this.#slots.length)
      throw new RangeError(`Expected at most ${this.#slots.length} blocks, got ${count}`);
    const want = count * BLOCK_SIZE;
    let got = readvSync(fd, this.#targets.slice(0, count), offset);
    // readv may stop short of a regular file's end only rarely; finish block by block.
    while (got < want) {
      const i = Math.floor(got / BLOCK_SIZE);
      const within = got % BLOCK_SIZE;
      const target = this.#targets[i] as Buffer;
      const n = readSync(fd, target, within, BLOCK_SIZE - within, offset + got);
      if (n === 0) return got;
      got += n;
    }
    for (let i = 0; i < count; i++) {
      out.write(hash('sha256', this.#slots[i] as Buffer, 'binary'), i * 32, 32, 'latin1');
    }
    return got;
  }

  get salt(): Uint8Array {
    return this.#salt;
  }
}
