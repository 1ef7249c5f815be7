// cpio "newc" (SVR4, magic 070701) archives for initramfs, as the kernel unpacks them
// (Documentation/driver-api/early-userspace/buffer-format.rst): deterministic, optional zstd.
import { zstdCompressSync } from 'node:zlib';
import { FormatError } from '../format-error.ts';
import { NEWC_HEADER } from './newc-header.ts';

export type CpioEntry =
  | { path: string; type: 'file'; data: Uint8Array; mode?: number }
  | { path: string; type: 'dir'; mode?: number }
  | { path: string; type: 'symlink'; target: string }
  | { path: string; type: 'char' | 'block'; major: number; minor: number; mode?: number };

export interface CpioOptions {
  sourceDateEpoch: number;
  compress?: 'zstd';
}

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

function header(f: {
  ino: number;
  mode: number;
  nlink: number;
  mtime: number;
  size: number;
  rmaj?: number;
  rmin?: number;
  name: string;
}): Buffer {
  const name = Buffer.from(`${f.name}\0`, 'utf8');
  const h = NEWC_HEADER.encode({
    ino: f.ino,
    mode: f.mode,
    nlink: f.nlink,
    mtime: f.mtime,
    filesize: f.size,
    rdevMajor: f.rmaj ?? 0,
    rdevMinor: f.rmin ?? 0,
    namesize: name.length,
  });
  const used = h.length + name.length;
  return Buffer.concat([h, name, Buffer.alloc((4 - (used % 4)) % 4)]);
}

function pad4(n: number): Buffer {
  return Buffer.alloc((4 - (n % 4)) % 4);
}

function cleanPath(p: string): string {
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.length === 0 || parts.some((s) => s === '..')) {
    throw new FormatError(
      'E_CPIO_BAD_PATH',
      `Cannot add ${JSON.stringify(p)} to cpio: empty or escaping path`,
    );
  }
  return parts.join('/');
}

/**
 * Encodes `entries` sorted by path with inode numbers 1…n, uid/gid 0, every mtime =
 * SOURCE_DATE_EPOCH, ending with TRAILER!!!; zstd-compressed when asked.
 */
export async function writeCpio(entries: readonly CpioEntry[], options: CpioOptions): Promise<Uint8Array> {
  const epoch = options.sourceDateEpoch;
  if (!Number.isSafeInteger(epoch) || epoch < 0 || epoch > 0xffffffff) {
    throw new FormatError(
      'E_CPIO_BAD_EPOCH',
      `Cannot use SOURCE_DATE_EPOCH ${epoch}: expected 0 to 4294967295`,
    );
  }
  const sorted = entries
    .map((e) => ({ ...e, path: cleanPath(e.path) }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const chunks: Buffer[] = [];
  let ino = 1;
  let prev = '';
  for (const e of sorted) {
    if (e.path === prev) throw new FormatError('E_CPIO_DUPLICATE', `Cannot add ${e.path} to cpio twice`);
    prev = e.path;
    const perm = (e.type === 'symlink' ? 0o777 : (e.mode ?? (e.type === 'dir' ? 0o755 : 0o644))) & 0o7777;
    let mode: number;
    let body: Uint8Array = new Uint8Array(0);
    let rmaj = 0;
    let rmin = 0;
    if (e.type === 'file') {
      mode = S_IFREG | perm;
      body = e.data;
      if (body.length > 0xffffffff)
        throw new FormatError('E_CPIO_TOO_BIG', `Cannot add ${e.path}: newc files are at most 4 GiB`);
    } else if (e.type === 'dir') mode = S_IFDIR | perm;
    else if (e.type === 'symlink') {
      mode = S_IFLNK | perm;
      body = Buffer.from(e.target, 'utf8');
    } else {
      mode = (e.type === 'char' ? S_IFCHR : S_IFBLK) | perm;
      rmaj = e.major;
      rmin = e.minor;
    }
    chunks.push(
      header({
        ino: ino++,
        mode,
        nlink: e.type === 'dir' ? 2 : 1,
        mtime: epoch,
        size: body.length,
        rmaj,
        rmin,
        name: e.path,
      }),
    );
    chunks.push(Buffer.from(body.buffer, body.byteOffset, body.length), pad4(body.length));
  }
  chunks.push(header({ ino: 0, mode: 0, nlink: 1, mtime: 0, size: 0, name: 'TRAILER!!!' }));
  const raw = Buffer.concat(chunks);
  const out = options.compress === 'zstd' ? zstdCompressSync(raw) : raw;
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}
