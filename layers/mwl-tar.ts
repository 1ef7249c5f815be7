// The ustar subset a .mwl uses: regular files only, short names, fixed owner and time.
// We write and parse headers ourselves (not tar-stream) because the agent needs exact byte
// offsets of member data, and a strict reader must see every header, pax or not.
import { LayerError } from './layer-error.ts';

export const BLOCK = 512;

export function pad512(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}

function octal(buf: Buffer, value: number, offset: number, width: number): void {
  // width-1 octal digits then NUL, as GNU tar writes them.
  buf.write(`${value.toString(8).padStart(width - 1, '0')}\0`, offset, width, 'ascii');
}

/** A ustar header for a regular file `name` of `size` bytes, mode 0644, uid/gid 0. */
export function encodeHeader(name: string, size: number, mtime: number): Buffer {
  if (Buffer.byteLength(name) > 99 || !/^[A-Za-z0-9._-]+$/.test(name)) {
    throw new LayerError('E_LAYER_PATH', `Cannot write tar member ${JSON.stringify(name)}`);
  }
  if (size > 0o77777777777) throw new LayerError('E_LAYER_MEMBER_SIZE', `${name} is too large for ustar`);
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'ascii');
  octal(h, 0o644, 100, 8);
  octal(h, 0, 108, 8);
  octal(h, 0, 116, 8);
  octal(h, size, 124, 12);
  octal(h, mtime, 136, 12);
  h.fill(' ', 148, 156);
  h.write('0', 156, 1, 'ascii');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return h;
}

export interface TarHeader {
  name: string;
  size: number;
  typeflag: string;
  mtime: number;
}

function field(h: Buffer, offset: number, width: number): string {
  const raw = h.subarray(offset, offset + width);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul < 0 ? width : nul).toString('latin1');
}

function readOctal(h: Buffer, offset: number, width: number, what: string, at: number): number {
  const s = field(h, offset, width).trim();
  if (!/^[0-7]{1,12}$/.test(s)) {
    throw new LayerError('E_LAYER_TAR', `Tar header at byte ${at} has a bad ${what} field`, {
      details: { offset: at },
    });
  }
  return Number.parseInt(s, 8);
}

/** Parses one header block; `at` is its byte offset (for messages). Null for a zero block. */
export function decodeHeader(h: Buffer, at: number): TarHeader | null {
  if (h.every((b) => b === 0)) return null;
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : (h[i] as number);
  if (readOctal(h, 148, 8, 'checksum', at) !== sum) {
    throw new LayerError('E_LAYER_TAR', `Tar header at byte ${at} has a bad checksum`, {
      details: { offset: at },
    });
  }
  if (h.toString('latin1', 257, 263) !== 'ustar\0') {
    throw new LayerError('E_LAYER_TAR', `Tar header at byte ${at} is not ustar`, { details: { offset: at } });
  }
  const prefix = field(h, 345, 155);
  const base = field(h, 0, 100);
  return {
    name: prefix === '' ? base : `${prefix}/${base}`,
    size: readOctal(h, 124, 12, 'size', at),
    typeflag: h.toString('latin1', 156, 157),
    mtime: readOctal(h, 136, 12, 'mtime', at),
  };
}
