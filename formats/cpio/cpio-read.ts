// A small cpio newc reader for tests and inspection: checks magic, hex fields, sizes
// against the remaining bytes and a count cap before trusting anything.
import type { FormatCode } from '../format-codes.ts';
import { FormatError } from '../format-error.ts';
import { NEWC_CRC_MAGIC, NEWC_HEADER, NEWC_HEADER_SIZE, NEWC_MAGIC } from './newc-header.ts';

export interface CpioMember {
  path: string;
  mode: number;
  ino: number;
  mtime: number;
  rdevMajor: number;
  rdevMinor: number;
  data: Uint8Array;
}

const MAX_MEMBERS = 1_000_000;

function bad(code: FormatCode, at: number, what: string): FormatError {
  return new FormatError(code, `Cannot decode cpio member at byte ${at}: ${what}`, {
    details: { offset: at },
  });
}

/** Decodes an uncompressed newc archive up to TRAILER!!!. */
export function readCpio(archive: Uint8Array): CpioMember[] {
  const buf = Buffer.from(archive.buffer, archive.byteOffset, archive.length);
  const out: CpioMember[] = [];
  let off = 0;
  for (;;) {
    if (out.length >= MAX_MEMBERS) throw bad('E_CPIO_TOO_MANY', off, `more than ${MAX_MEMBERS} members`);
    if (off + NEWC_HEADER_SIZE > buf.length)
      throw bad('E_CPIO_TRUNCATED', off, 'archive ends inside a header (no TRAILER!!!)');
    const raw = archive.subarray(off, off + NEWC_HEADER_SIZE);
    const magic = buf.toString('latin1', off, off + 6);
    if (magic !== NEWC_MAGIC && magic !== NEWC_CRC_MAGIC)
      throw bad('E_CPIO_MAGIC', off, `magic is ${JSON.stringify(magic)}, expected "070701"`);
    const h = NEWC_HEADER.decode(raw, (f, s) =>
      bad('E_CPIO_FIELD', off, `field ${f.name} is ${JSON.stringify(s)}, not 8 hex digits`),
    );
    const { ino, mode, mtime, filesize: size, rdevMajor: rmaj, rdevMinor: rmin, namesize: nameSize } = h;
    const nameEnd = off + NEWC_HEADER_SIZE + nameSize;
    if (nameSize < 1 || nameEnd > buf.length)
      throw bad('E_CPIO_NAME', off, `name size ${nameSize} runs past the archive`);
    if (buf[nameEnd - 1] !== 0) throw bad('E_CPIO_NAME', off, 'name is not NUL-terminated');
    const path = buf.toString('utf8', off + NEWC_HEADER_SIZE, nameEnd - 1);
    const dataStart = Math.ceil(nameEnd / 4) * 4;
    if (size > buf.length - Math.min(dataStart, buf.length))
      throw bad('E_CPIO_SIZE', off, `file size ${size} runs past the archive`);
    if (path === 'TRAILER!!!') return out;
    out.push({
      path,
      mode,
      ino,
      mtime,
      rdevMajor: rmaj,
      rdevMinor: rmin,
      data: archive.subarray(dataStart, dataStart + size),
    });
    off = Math.ceil((dataStart + size) / 4) * 4;
  }
}
