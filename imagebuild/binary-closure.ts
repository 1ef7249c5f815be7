// Executables with the shared libraries they need, read from their ELF headers
// (PT_INTERP, DT_NEEDED, DT_RUNPATH) instead of running ldd, so it also works on a
// foreign root and never executes what it inspects. Search order follows ld.so(8):
// DT_RUNPATH, then the Debian multiarch and default directories.
import { lstat, open, readlink, realpath } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { ImageError } from './image-error.ts';

export interface ClosureFile {
  /** The file to read, on this machine (symlinks resolved). */
  src: string;
  /** Where it goes in the image, as the program or loader names it. */
  dest: string;
}

export interface BinaryClosureOptions {
  /** Look up paths and libraries under this directory instead of `/`. */
  root?: string;
}

export interface ElfDeps {
  interpreter: string | undefined;
  needed: string[];
  runpath: string[];
}

const DEFAULT_LIB_DIRS = [
  '/lib/x86_64-linux-gnu',
  '/usr/lib/x86_64-linux-gnu',
  '/lib64',
  '/usr/lib64',
  '/lib',
  '/usr/lib',
];
const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;
const DT_RPATH = 15n;
const DT_RUNPATH = 29n;
// Headers and dynamic sections of real binaries are small; refuse anything absurd.
const MAX_TABLE = 1 << 20;

function cstr(buf: Uint8Array, at: number): string {
  let end = at;
  while (end < buf.length && buf[end] !== 0) end++;
  return Buffer.from(buf.subarray(at, end)).toString('utf8');
}

/** Reads PT_INTERP and the DT_NEEDED / DT_RUNPATH entries of a 64-bit little-endian ELF file. */
export async function readElfDeps(path: string): Promise<ElfDeps | undefined> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const read = async (pos: number, len: number): Promise<Uint8Array> => {
      if (pos < 0 || len < 0 || len > MAX_TABLE || pos + len > size) {
        throw new ImageError(
          'E_ELF_BAD',
          `Cannot read ELF ${path}: table at ${pos}+${len} outside the file (${size} bytes)`,
          { path },
        );
      }
      const b = new Uint8Array(len);
      await fh.read(b, 0, len, pos);
      return b;
    };
    if (size < 64) return undefined;
    const eh = await read(0, 64);
    if (eh[0] !== 0x7f || eh[1] !== 0x45 || eh[2] !== 0x4c || eh[3] !== 0x46) return undefined; // not ELF: a script or data
    if (eh[4] !== 2 || eh[5] !== 1)
      throw new ImageError('E_ELF_BAD', `Cannot read ELF ${path}: only 64-bit little-endian is supported`, {
        path,
      });
    const ev = new DataView(eh.buffer, eh.byteOffset, eh.byteLength);
    const phoff = Number(ev.getBigUint64(32, true));
    const phentsize = ev.getUint16(54, true);
    const phnum = ev.getUint16(56, true);
    if (phentsize < 56)
      throw new ImageError('E_ELF_BAD', `Cannot read ELF ${path}: program header size ${phentsize}`, {
        path,
      });
    const ph = await read(phoff, phentsize * phnum);
    const pv = new DataView(ph.buffer, ph.byteOffset, ph.byteLength);
    const loads: { vaddr: bigint; offset: bigint; filesz: bigint }[] = [];
    let interpreter: string | undefined;
    let dyn: { offset: number; size: number } | undefined;
    for (let i = 0; i < phnum; i++) {
      const o = i * phentsize;
      const type = pv.getUint32(o, true);
      const offset = pv.getBigUint64(o + 8, true);
      const vaddr = pv.getBigUint64(o + 16, true);
      const filesz = pv.getBigUint64(o + 32, true);
      if (type === PT_LOAD) loads.push({ vaddr, offset, filesz });
      else if (type === PT_INTERP) interpreter = cstr(await read(Number(offset), Number(filesz)), 0);
      else if (type === PT_DYNAMIC) dyn = { offset: Number(offset), size: Number(filesz) };
    }
    if (dyn === undefined) return { interpreter, needed: [], runpath: [] };
    const d = await read(dyn.offset, dyn.size);
    const dv = new DataView(d.buffer, d.byteOffset, d.byteLength);
    const needOffsets: bigint[] = [];
    const runOffsets: bigint[] = [];
    let strtab: bigint | undefined;
    for (let o = 0; o + 16 <= d.length; o += 16) {
      const tag = dv.getBigInt64(o, true);
      const val = dv.getBigUint64(o + 8, true);
      if (tag === 0n) break;
      if (tag === DT_NEEDED) needOffsets.push(val);
      else if (tag === DT_STRTAB) strtab = val;
      else if (tag === DT_RUNPATH || tag === DT_RPATH) runOffsets.push(val);
    }
    if (strtab === undefined) return { interpreter, needed: [], runpath: [] };
    // DT_STRTAB is a virtual address: map it to a file offset through the PT_LOAD that holds it.
    const seg = loads.find((l) => strtab !== undefined && strtab >= l.vaddr && strtab < l.vaddr + l.filesz);
    if (seg === undefined)
      throw new ImageError('E_ELF_BAD', `Cannot read ELF ${path}: DT_STRTAB outside every PT_LOAD`, { path });
    const strOff = Number(strtab - seg.vaddr + seg.offset);
    const strLen = Math.min(MAX_TABLE, size - strOff, Number(seg.offset + seg.filesz) - strOff);
    const strs = await read(strOff, strLen);
    const at = (v: bigint): string => {
      if (v >= BigInt(strs.length))
        throw new ImageError('E_ELF_BAD', `Cannot read ELF ${path}: string offset ${v} outside DT_STRTAB`, {
          path,
        });
      return cstr(strs, Number(v));
    };
    return {
      interpreter,
      needed: needOffsets.map(at),
      runpath: runOffsets.flatMap((v) => at(v).split(':')).filter((s) => s !== ''),
    };
  } finally {
    await fh.close();
  }
}

async function resolveUnder(root: string | undefined, p: string): Promise<string | undefined> {
  try {
    if (root === undefined) return await realpath(p);
    // Resolve inside root: absolute symlink targets are relative to root, never the host.
    let cur = '/';
    const parts = p.split('/').filter((s) => s !== '');
    for (let hops = 0, i = 0; i < parts.length; i++) {
      const part = parts[i] ?? '';
      const next = posix.join(cur, part);
      const st = await lstat(join(root, next));
      if (st.isSymbolicLink()) {
        if (++hops > 40) return undefined;
        const target = await readlink(join(root, next));
        const rest = parts.slice(i + 1);
        const base = target.startsWith('/') ? '/' : cur;
        parts.splice(
          0,
          parts.length,
          ...posix
            .join(base, target, ...rest)
            .split('/')
            .filter((s) => s !== ''),
        );
        cur = '/';
        i = -1;
        continue;
      }
      cur = next;
    }
    return join(root, cur);
  } catch {
    return undefined;
  }
}

/**
 * `paths` plus the ELF interpreter and every shared library they need, transitively,
 * each once. `dest` is the path as asked for (or as the loader will look it up), `src`
 * the real file behind it. A library that cannot be found is an error naming who needs it.
 */
export async function binaryClosure(
  paths: readonly string[],
  options: BinaryClosureOptions = {},
): Promise<ClosureFile[]> {
  const root = options.root;
  const out = new Map<string, ClosureFile>();
  const queue: { dest: string; neededBy: string | undefined; dirs?: string[] }[] = paths.map((p) => ({
    dest: p,
    neededBy: undefined,
  }));
  const libsFound = new Map<string, string>(); // soname → dest
  for (let guard = 0; queue.length > 0; guard++) {
    if (guard > 10_000)
      throw new ImageError('E_ELF_BAD', 'Cannot compute binary closure: more than 10000 files');
    const item = queue.shift();
    if (item === undefined) break;
    if (out.has(item.dest)) continue;
    const src = await resolveUnder(root, item.dest);
    if (src === undefined) {
      throw new ImageError(
        'E_BINARY_NOT_FOUND',
        `Cannot find ${item.dest}${item.neededBy === undefined ? '' : ` (needed by ${item.neededBy})`}${root === undefined ? '' : ` under ${root}`}`,
        { path: item.dest },
      );
    }
    out.set(item.dest, { src, dest: item.dest });
    const elf = await readElfDeps(src);
    if (elf === undefined) continue;
    if (elf.interpreter !== undefined) queue.push({ dest: elf.interpreter, neededBy: item.dest });
    const origin = posix.dirname(item.dest);
    const dirs = [...elf.runpath.map((r) => r.replaceAll('$ORIGIN', origin)), ...DEFAULT_LIB_DIRS];
    for (const soname of elf.needed) {
      if (libsFound.has(soname)) continue;
      let found: string | undefined;
      for (const dir of dirs) {
        const candidate = posix.join(dir, soname);
        if ((await resolveUnder(root, candidate)) !== undefined) {
          found = candidate;
          break;
        }
      }
      if (found === undefined) {
        throw new ImageError(
          'E_BINARY_NOT_FOUND',
          `Cannot find shared library ${soname} (needed by ${item.dest})`,
          { path: item.dest },
        );
      }
      libsFound.set(soname, found);
      queue.push({ dest: found, neededBy: item.dest });
    }
  }
  return [...out.values()].sort((a, b) => (a.dest < b.dest ? -1 : a.dest > b.dest ? 1 : 0));
}
