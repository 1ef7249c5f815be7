// The ustar subset a .mwl uses: regular files only, short names, fixed owner and time. The
// header itself is formats/tar's field table; this file adds the .mwl's rules and codes.
// We write and parse headers ourselves (not tar-stream) because the agent needs exact byte
// offsets of member data, and a strict reader must see every header, pax or not.
import { decodeUstarHeader, encodeUstarHeader, isFormatError, TAR_BLOCK } from '../formats/index.ts';
import { LayerError } from './layer-error.ts';

export const BLOCK = TAR_BLOCK;

export function pad512(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}

/** A ustar header for a regular file `name` of `size` bytes, mode 0644, uid/gid 0. */
export function encodeHeader(name: string, size: number, mtime: number): Buffer {
  if (Buffer.byteLength(name) > 99 || !/^[A-Za-z0-9._-]+$/.test(name)) {
    throw new LayerError('E_LAYER_PATH', `Cannot write tar member ${JSON.stringify(name)}`);
  }
  if (size > 0o77777777777) throw new LayerError('E_LAYER_MEMBER_SIZE', `${name} is too large for ustar`);
  const h = encodeUstarHeader({ name, mode: 0o644, uid: 0, gid: 0, size, mtime, typeflag: '0' });
  return Buffer.from(h.buffer, h.byteOffset, h.length);
}

export interface TarHeader {
  name: string;
  size: number;
  typeflag: string;
  mtime: number;
}

/** Parses one header block; `at` is its byte offset (for messages). Null for a zero block. */
export function decodeHeader(h: Buffer, at: number): TarHeader | null {
  try {
    const e = decodeUstarHeader(h, at);
    return e === null ? null : { name: e.name, size: e.size, typeflag: e.typeflag, mtime: e.mtime };
  } catch (e) {
    if (!isFormatError(e)) throw e;
    // One .mwl code for every malformed header; the format's own code stays in `cause`.
    throw new LayerError('E_LAYER_TAR', e.message, { details: { offset: at }, cause: e });
  }
}
