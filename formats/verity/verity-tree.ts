// Builds the dm-verity hash levels from a stream of level-0 digests, one pending
// 4096-byte block per level, writing each finished block straight to its place in the
// hash area (veritysetup's layout: top level first) through a sink: a file (formatVerity;
// memory does not grow with data size) or a buffer holding the whole area (layers' pack).
import { writeSync } from 'node:fs';
import { hash } from 'node:crypto';
import { BLOCK_SIZE } from '../block-size.ts';
import { VERITY_DIGEST_SIZE, type VerityGeometry } from './verity-geometry.ts';

/** Blocks gathered per level before one write call. */
const WRITE_BATCH = 64;

interface LevelState {
  firstBlock: number;
  buf: Uint8Array;
  /** Bytes filled in `buf`. */
  fill: number;
  /** Blocks of this level already written. */
  written: number;
}

/** Where finished hash blocks go; `position` is a byte offset in the hash area (0 = superblock). */
export type VerityTreeSink = (bytes: Uint8Array, position: number) => void;

/** A sink writing into an open file whose hash area starts at byte `areaOffset`. */
export function fileTreeSink(fd: number, areaOffset: number): VerityTreeSink {
  return (bytes, position) => {
    let done = 0;
    while (done < bytes.length)
      done += writeSync(fd, bytes, done, bytes.length - done, areaOffset + position + done);
  };
}

/** A sink filling `area`, a buffer the size of the whole hash area. */
export function memoryTreeSink(area: Uint8Array): VerityTreeSink {
  return (bytes, position) => {
    if (position + bytes.length > area.length)
      throw new RangeError(`Hash block at ${position} does not fit in a ${area.length}-byte area`);
    area.set(bytes, position);
  };
}

export class VerityTreeWriter {
  readonly #sink: VerityTreeSink;
  readonly #salt: Uint8Array;
  readonly #levels: LevelState[];
  readonly #scratch: Buffer;
  #firstDigest: Uint8Array | undefined;

  constructor(sink: VerityTreeSink, salt: Uint8Array, geometry: VerityGeometry) {
    this.#sink = sink;
    this.#salt = salt;
    this.#levels = geometry.levels.map((l) => ({
      firstBlock: l.firstBlock,
      buf: new Uint8Array(WRITE_BATCH * BLOCK_SIZE),
      fill: 0,
      written: 0,
    }));
    this.#scratch = Buffer.alloc(salt.length + BLOCK_SIZE);
    this.#scratch.set(salt, 0);
  }

  /** Appends level-0 digests (a multiple of 32 bytes), in data block order. */
  push(digests: Uint8Array): void {
    if (this.#firstDigest === undefined && digests.length >= VERITY_DIGEST_SIZE) {
      this.#firstDigest = digests.slice(0, VERITY_DIGEST_SIZE);
    }
    if (this.#levels.length > 0) this.#append(0, digests);
  }

  #append(level: number, digests: Uint8Array): void {
    const st = this.#levels[level] as LevelState;
    let off = 0;
    while (off < digests.length) {
      const n = Math.min(digests.length - off, st.buf.length - st.fill);
      st.buf.set(digests.subarray(off, off + n), st.fill);
      const before = st.fill;
      st.fill += n;
      off += n;
      // Hash every block that just became complete and pass it up.
      const firstDone = Math.floor(before / BLOCK_SIZE);
      const lastDone = Math.floor(st.fill / BLOCK_SIZE);
      for (let b = firstDone; b < lastDone; b++)
        this.#up(level, st.buf.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE));
      if (st.fill === st.buf.length) this.#flush(st);
    }
  }

  #up(level: number, block: Uint8Array): void {
    if (level + 1 >= this.#levels.length) return;
    this.#scratch.set(block, this.#salt.length);
    this.#append(level + 1, new Uint8Array(hash('sha256', this.#scratch, 'buffer')));
  }

  #flush(st: LevelState): void {
    const bytes = Math.ceil(st.fill / BLOCK_SIZE) * BLOCK_SIZE;
    if (bytes === 0) return;
    this.#sink(st.buf.subarray(0, bytes), (st.firstBlock + st.written) * BLOCK_SIZE);
    st.written += bytes / BLOCK_SIZE;
    st.buf.fill(0);
    st.fill = 0;
  }

  /** Zero-pads and writes each level's last block, bottom-up, and returns the root hash. */
  finish(): Uint8Array {
    const top = this.#levels.length - 1;
    if (top < 0) {
      if (this.#firstDigest === undefined) throw new RangeError('Expected at least one data block digest');
      return this.#firstDigest;
    }
    let root: Uint8Array | undefined;
    for (let level = 0; level <= top; level++) {
      const st = this.#levels[level] as LevelState;
      if (st.fill % BLOCK_SIZE !== 0) {
        const start = Math.floor(st.fill / BLOCK_SIZE) * BLOCK_SIZE;
        st.fill = start + BLOCK_SIZE;
        const block = st.buf.subarray(start, st.fill);
        if (level === top) root = this.#digest(block);
        else this.#up(level, block);
      } else if (level === top && st.fill > 0) {
        root = this.#digest(st.buf.subarray(st.fill - BLOCK_SIZE, st.fill));
      }
      this.#flush(st);
    }
    if (root === undefined) throw new RangeError('Verity tree has no top block');
    return root;
  }

  #digest(block: Uint8Array): Uint8Array {
    this.#scratch.set(block, this.#salt.length);
    return new Uint8Array(hash('sha256', this.#scratch, 'buffer'));
  }
}
