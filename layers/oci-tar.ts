// Streaming reads of (possibly compressed) tar files with tar-stream, and safe archive
// path normalisation shared by the OCI importer.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { posix } from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createZstdDecompress } from 'node:zlib';
import { extract, type Header } from 'tar-stream';
import { LayerError } from './layer-error.ts';

/** An entry: its header, and its data as an async iterable (consume or resume it). */
export type TarEntry = AsyncIterable<Buffer> & { header: Header; resume(): unknown };

async function magic(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(4);
    await fh.read(b, 0, 4, 0);
    return b;
  } finally {
    await fh.close();
  }
}

/** A decompressed byte stream of `path` (gzip and zstd detected by magic). */
export async function openMaybeCompressed(path: string): Promise<Readable> {
  const m = await magic(path);
  const src = createReadStream(path, { highWaterMark: 1 << 20 });
  // 1 MiB output chunks: with zlib's 16 KiB the decompressor (on the thread pool) and the
  // tar reader (on the main thread) took turns instead of running side by side.
  if (m[0] === 0x1f && m[1] === 0x8b) return src.pipe(createGunzip({ chunkSize: 1 << 20 }));
  if (m.readUInt32LE(0) === 0xfd2fb528) return src.pipe(createZstdDecompress({ chunkSize: 1 << 20 }));
  return src;
}

/**
 * Calls `onEntry` for each entry of the tar at `path`; the entry stream must be consumed.
 * An archive whose data ends right after its last member's data (no padding, no end
 * marker, as umoci 0.4 writes layers) is accepted: every member arrived whole. A member
 * cut short is E_OCI_ARCHIVE.
 */
export async function forEachEntry(
  path: string,
  what: string,
  onEntry: (e: TarEntry) => Promise<void>,
): Promise<void> {
  let total = 0;
  // Up to 32 MiB decompressed ahead of the entry being written, so the decompressor keeps
  // going while a file is written.
  const counter = new Transform({
    readableHighWaterMark: 32 << 20,
    transform(chunk: Buffer, _enc, cb) {
      total += chunk.length;
      cb(null, chunk);
    },
  });
  const ex = extract();
  const input = await openMaybeCompressed(path);
  const feeding = pipeline(input, counter, ex as unknown as NodeJS.WritableStream).then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  let lastEnd = -1;
  let loopError: unknown;
  try {
    for await (const raw of ex) {
      const entry = raw as unknown as TarEntry & { offset: number };
      lastEnd = entry.offset + 512 + (entry.header.size ?? 0);
      await onEntry(entry);
      entry.resume();
    }
  } catch (e) {
    loopError = e;
    input.destroy();
    ex.destroy();
  }
  const feedError = await feeding;
  if (loopError instanceof LayerError) throw loopError;
  const err = (loopError ?? feedError) as Error | undefined;
  if (err === undefined) return;
  if (/Unexpected end of data/.test(err.message) && total === lastEnd) return;
  throw new LayerError('E_OCI_ARCHIVE', `${what} is not a readable tar: ${err.message}`, { cause: err });
}

/**
 * The normalised relative path of an archive member, '' for the root. Refuses absolute
 * paths (except the root itself, which umoci writes as "/") and any `..` component.
 */
export function memberPath(name: string, what: string): string {
  if (name === '/' || name === './' || name === '.' || name === '') return '';
  if (name.startsWith('/')) {
    throw new LayerError('E_OCI_PATH', `${what}: member ${JSON.stringify(name)} is an absolute path`, {
      details: { member: name },
    });
  }
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) {
    throw new LayerError(
      'E_OCI_PATH',
      `${what}: member ${JSON.stringify(name)} climbs out of the root (..)`,
      { details: { member: name } },
    );
  }
  if (name.includes('\0')) throw new LayerError('E_OCI_PATH', `${what}: member name contains NUL`);
  return posix.join(...(parts.length === 0 ? ['.'] : parts)).replace(/^\.$/, '');
}
