// A small cpio newc reader for tests and inspection: checks magic, hex fields, sizes
// against the remaining bytes and a count cap before trusting anything.
import { FormatError } from '../format-error.ts';

export interface CpioMember {
  path: string;
  mode: number;
  ino: number;
  mtime: number;
  rdevMajor: number;
  rdevMinor: number;
  data: Uint8Array;
}

const HEADER = 110;
const MAX_MEMBERS = 1_000_000;

function bad(code: string, at: number, what: string): FormatError {
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
    if (off + HEADER > buf.length)
      throw bad('E_CPIO_TRUNCATED', off, 'archive ends inside a header (no TRAILER!!!)');
    const magic = buf.toString('latin1', off, off + 6);
    if (magic !== '070701' && magic !== '070702')
      throw bad('E_CPIO_MAGIC', off, `magic is ${JSON.stringify(magic)}, expected "070701"`);
    const field = (i: number): number => {
      const s = buf.toString('latin1', off + 6 + i * 8, off + 14 + i * 8);
      if (!/^[0-9a-fA-F]{8}$/.test(s))
        throw bad('E_CPIO_FIELD', off, `field ${i} is ${JSON.stringify(s)}, not 8 hex digits`);
      return Number.parseInt(s, 16);
    };
    const [ino, mode, , , , mtime, size, , , rmaj, rmin, nameSize] = Array.from({ length: 12 }, (_, i) =>
      field(i),
    ) as number[];
    const nameEnd = off + HEADER + (nameSize ?? 0);
    if ((nameSize ?? 0) < 1 || nameEnd > buf.length)
      throw bad('E_CPIO_NAME', off, `name size ${nameSize} runs past the archive`);
    if (buf[nameEnd - 1] !== 0) throw bad('E_CPIO_NAME', off, 'name is not NUL-terminated');
    const path = buf.toString('utf8', off + HEADER, nameEnd - 1);
    const dataStart = Math.ceil(nameEnd / 4) * 4;
    if ((size ?? 0) > buf.length - Math.min(dataStart, buf.length))
      throw bad('E_CPIO_SIZE', off, `file size ${size} runs past the archive`);
    if (path === 'TRAILER!!!') return out;
    out.push({
      path,
      mode: mode ?? 0,
      ino: ino ?? 0,
      mtime: mtime ?? 0,
      rdevMajor: rmaj ?? 0,
      rdevMinor: rmin ?? 0,
      data: archive.subarray(dataStart, dataStart + (size ?? 0)),
    });
    off = Math.ceil((dataStart + (size ?? 0)) / 4) * 4;
  }
}
