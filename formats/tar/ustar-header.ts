// The 512-byte POSIX ustar header (IEEE Std 1003.1-2017, pax, "ustar Interchange Format"),
// declared once as a field table. Numbers are ASCII octal then NUL; the checksum is the sum
// of all header bytes with its own field read as spaces, written as GNU tar does ("%06o\0 ").
// The .mwl framing (layers/mwl-tar.ts) uses the regular-file subset; the decoder checks the
// checksum and the magic before anything else is used.
import { fieldTable } from '../_field-table.ts';
import type { FormatCode } from '../format-codes.ts';
import { FormatError } from '../format-error.ts';

export const TAR_BLOCK = 512;
export const USTAR_MAGIC = 'ustar\0';

const P = 'POSIX.1-2017 pax, ustar header';
export const USTAR_HEADER = fieldTable('ustar header', TAR_BLOCK, [
  { name: 'name', offset: 0, size: 100, type: 'text', spec: `${P}: name` },
  { name: 'mode', offset: 100, size: 8, type: 'octal', spec: `${P}: mode` },
  { name: 'uid', offset: 108, size: 8, type: 'octal', spec: `${P}: uid` },
  { name: 'gid', offset: 116, size: 8, type: 'octal', spec: `${P}: gid` },
  { name: 'size', offset: 124, size: 12, type: 'octal', spec: `${P}: size` },
  { name: 'mtime', offset: 136, size: 12, type: 'octal', spec: `${P}: mtime` },
  { name: 'chksum', offset: 148, size: 8, type: 'octal', digits: 6, value: 0, spec: `${P}: chksum` },
  { name: 'typeflag', offset: 156, size: 1, type: 'text', spec: `${P}: typeflag ('0' regular file)` },
  { name: 'linkname', offset: 157, size: 100, type: 'text', value: '', spec: `${P}: linkname` },
  { name: 'magic', offset: 257, size: 6, type: 'text', value: USTAR_MAGIC, spec: `${P}: magic` },
  { name: 'version', offset: 263, size: 2, type: 'text', value: '00', spec: `${P}: version` },
  { name: 'uname', offset: 265, size: 32, type: 'text', value: '', spec: `${P}: uname` },
  { name: 'gname', offset: 297, size: 32, type: 'text', value: '', spec: `${P}: gname` },
  // Left empty (NUL) for regular files, as the .mwl has always written them; tar reads them so.
  { name: 'devmajor', offset: 329, size: 8, type: 'text', value: '', spec: `${P}: devmajor` },
  { name: 'devminor', offset: 337, size: 8, type: 'text', value: '', spec: `${P}: devminor` },
  { name: 'prefix', offset: 345, size: 155, type: 'text', value: '', spec: `${P}: prefix` },
  { name: 'pad', offset: 500, size: 12, type: 'reserved', spec: 'not part of the header (zero)' },
]);

export interface UstarEntry {
  /** Full path (prefix and name joined). */
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  /** The typeflag byte as a character ('0', or '\0' for an old-style regular file). */
  typeflag: string;
}

/** Sum of the header bytes with the checksum field counted as eight spaces. */
function checksum(h: Uint8Array): number {
  const f = USTAR_HEADER.field('chksum');
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += i >= f.offset && i < f.offset + f.size ? 0x20 : (h[i] as number);
  return sum;
}

/** A header for `e` (name up to 100 bytes, no prefix). */
export function encodeUstarHeader(e: UstarEntry): Uint8Array {
  const h = USTAR_HEADER.encode({ ...e });
  USTAR_HEADER.write(h, 'chksum', checksum(h));
  return h;
}

function bad(code: FormatCode, at: number, what: string): FormatError {
  return new FormatError(code, `Tar header at byte ${at} ${what}`, { details: { offset: at } });
}

/**
 * Decodes one header block found at byte `at` (for messages); null for an all-zero block
 * (end of archive). Checks the length, the checksum and the magic first.
 */
export function decodeUstarHeader(block: Uint8Array, at: number): UstarEntry | null {
  if (block.length < TAR_BLOCK) throw bad('E_TAR_TRUNCATED', at, `is ${block.length} bytes, expected 512`);
  if (block.every((b) => b === 0)) return null;
  const bytes = block.subarray(0, TAR_BLOCK);
  const sum = USTAR_HEADER.read(bytes, 'chksum', () => bad('E_TAR_CHECKSUM', at, 'has a bad checksum field'));
  if (sum !== checksum(bytes)) throw bad('E_TAR_CHECKSUM', at, 'has a bad checksum');
  if (Buffer.from(USTAR_HEADER.raw(bytes, 'magic')).toString('latin1') !== USTAR_MAGIC)
    throw bad('E_TAR_MAGIC', at, 'is not ustar');
  const stored = USTAR_HEADER.decode(bytes, (f) => bad('E_TAR_FIELD', at, `has a bad ${f.name} field`));
  return {
    name: stored.prefix === '' ? stored.name : `${stored.prefix}/${stored.name}`,
    mode: stored.mode,
    uid: stored.uid,
    gid: stored.gid,
    size: stored.size,
    mtime: stored.mtime,
    typeflag: String.fromCharCode(USTAR_HEADER.raw(bytes, 'typeflag')[0] ?? 0),
  };
}
