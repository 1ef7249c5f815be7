// What a kernel's SELinux knows, read from its own image: the object classes and permissions
// (security/selinux/include/classmap.h `secclass_map`), the initial SID names
// (initial_sid_to_string.h) and the policy capabilities (policycap_names.h). The base policy's
// class list is generated from this (scripts/selinux-classes.ts), so it is the shipped kernel's,
// not a copy of some other kernel's header. The bzImage's payload is decompressed (xz, gzip or
// zstd, Linux's x86 boot protocol) and its ELF sections searched for those arrays: each is an
// array of pointers to C strings, found through a string it must contain ("compute_av", the
// first permission of the first class; "unlabeled", the third initial SID).
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { run } from '../common/index.ts';
import { ImageError } from './image-error.ts';

export interface KernelClass {
  name: string;
  perms: string[];
}

export interface KernelSelinux {
  classes: KernelClass[];
  /** Index = SID number (0 unused); null where this kernel leaves a SID unnamed. */
  initialSids: (string | null)[];
  policycaps: string[];
}

/** `struct security_class_mapping { const char *name; const char *perms[33]; }` on a 64-bit kernel. */
const CLASS_ENTRY = 8 + 33 * 8;
const IDENT = /^[a-z][a-z0-9_]*$/;

interface Section {
  addr: bigint;
  offset: number;
  size: number;
}

function bad(path: string, why: string): ImageError {
  return new ImageError('E_KERNEL_BAD_PACKAGE', `Cannot read SELinux's tables from ${path}: ${why}`, {
    path,
  });
}

/** The decompressed vmlinux (ELF) inside a bzImage. */
export async function kernelElf(vmlinuz: string): Promise<Buffer> {
  const image = await readFile(vmlinuz);
  const xz = image.indexOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]));
  const zstd = image.indexOf(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));
  const gz = image.indexOf(Buffer.from([0x1f, 0x8b, 0x08]));
  const found = [
    { at: xz, how: 'xz' },
    { at: zstd, how: 'zstd' },
    { at: gz, how: 'gzip' },
  ]
    .filter((c) => c.at >= 0)
    .sort((a, b) => a.at - b.at)[0];
  if (found === undefined) throw bad(vmlinuz, 'no xz, zstd or gzip payload');
  const payload = image.subarray(found.at);
  let elf: Buffer;
  if (found.how === 'gzip') elf = gunzipSync(payload, { finishFlush: 2 });
  else {
    // The payload is followed by the bzImage's tail: decode one stream and ignore the rest.
    const args = found.how === 'xz' ? ['-dc', '--single-stream'] : ['-dc'];
    const r = await run(found.how, args, { timeout: 120_000, input: payload, binary: true, reject: false });
    if (r.stdoutBytes === undefined || r.stdoutBytes.length === 0)
      throw bad(vmlinuz, `${found.how} could not decode the payload: ${r.stderr.trim()}`);
    elf = Buffer.from(r.stdoutBytes);
  }
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1)
    throw bad(vmlinuz, 'the payload is not a 64-bit little-endian ELF');
  return elf;
}

/** The allocated PROGBITS sections: where a kernel virtual address lies in the file. */
function sectionsOf(elf: Buffer, path: string): Section[] {
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  if (shentsize < 64 || shoff + shnum * shentsize > elf.length) throw bad(path, 'section table out of range');
  const out: Section[] = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    const type = elf.readUInt32LE(o + 4);
    const addr = elf.readBigUInt64LE(o + 16);
    const offset = Number(elf.readBigUInt64LE(o + 24));
    const size = Number(elf.readBigUInt64LE(o + 32));
    if (type === 1 && addr !== 0n && offset + size <= elf.length) out.push({ addr, offset, size });
  }
  return out;
}

class KernelImage {
  readonly elf: Buffer;
  readonly sections: Section[];
  readonly path: string;

  constructor(elf: Buffer, path: string) {
    this.elf = elf;
    this.path = path;
    this.sections = sectionsOf(elf, path);
  }

  offsetOf(addr: bigint): number | undefined {
    for (const s of this.sections) {
      if (addr >= s.addr && addr < s.addr + BigInt(s.size)) return s.offset + Number(addr - s.addr);
    }
    return undefined;
  }

  addrOf(offset: number): bigint | undefined {
    for (const s of this.sections) {
      if (offset >= s.offset && offset < s.offset + s.size) return s.addr + BigInt(offset - s.offset);
    }
    return undefined;
  }

  /** The identifier a pointer at `offset` points to, or undefined for NULL / anything else. */
  identAt(offset: number): string | undefined {
    const p = this.elf.readBigUInt64LE(offset);
    if (p === 0n) return undefined;
    const o = this.offsetOf(p);
    if (o === undefined) return undefined;
    const end = this.elf.indexOf(0, o);
    if (end < 0 || end - o > 64) return undefined;
    const s = this.elf.toString('latin1', o, end);
    return IDENT.test(s) ? s : undefined;
  }

  isNull(offset: number): boolean {
    return this.elf.readBigUInt64LE(offset) === 0n;
  }

  /** File offsets of every 8-byte pointer to the NUL-terminated string `text`. */
  pointersTo(text: string): number[] {
    const out: number[] = [];
    const needle = Buffer.from(`\0${text}\0`, 'latin1');
    for (let at = this.elf.indexOf(needle); at >= 0; at = this.elf.indexOf(needle, at + 1)) {
      const addr = this.addrOf(at + 1);
      if (addr === undefined) continue;
      const ptr = Buffer.alloc(8);
      ptr.writeBigUInt64LE(addr);
      for (let p = this.elf.indexOf(ptr); p >= 0; p = this.elf.indexOf(ptr, p + 1))
        if (p % 8 === 0) out.push(p);
    }
    return out;
  }
}

function readClasses(k: KernelImage): KernelClass[] {
  for (const p of k.pointersTo('compute_av')) {
    const start = p - 8;
    if (k.identAt(start) !== 'security') continue;
    const classes: KernelClass[] = [];
    for (let o = start; o + CLASS_ENTRY <= k.elf.length && !k.isNull(o); o += CLASS_ENTRY) {
      const name = k.identAt(o);
      if (name === undefined) throw bad(k.path, `class ${classes.length} has no name`);
      const perms: string[] = [];
      for (let i = 0; i < 33 && !k.isNull(o + 8 + i * 8); i++) {
        const perm = k.identAt(o + 8 + i * 8);
        if (perm === undefined) throw bad(k.path, `class ${name}: permission ${i} is not a name`);
        perms.push(perm);
      }
      if (perms.length > 32) throw bad(k.path, `class ${name} has more than 32 permissions`);
      classes.push({ name, perms });
    }
    if (classes.length > 0) return classes;
  }
  throw bad(k.path, 'no secclass_map (no class "security" whose first permission is compute_av)');
}

function readInitialSids(k: KernelImage): (string | null)[] {
  for (const p of k.pointersTo('unlabeled')) {
    const start = p - 24;
    if (start < 0 || !k.isNull(start) || k.identAt(start + 8) !== 'kernel') continue;
    if (k.identAt(start + 16) !== 'security') continue;
    // devnull (27) has been the last initial SID since Linux 2.6; a later one would follow it.
    const sids: (string | null)[] = [];
    for (let i = 0; i < 64; i++) {
      const o = start + i * 8;
      sids.push(i === 0 || k.isNull(o) ? null : (k.identAt(o) ?? null));
      if (sids[i] === 'devnull') return sids;
    }
  }
  throw bad(k.path, 'no initial_sid_to_string (null, "kernel", "security", "unlabeled", … "devnull")');
}

function readPolicycaps(k: KernelImage): string[] {
  for (const p of k.pointersTo('network_peer_controls')) {
    if (k.identAt(p + 8) !== 'open_perms') continue;
    const caps: string[] = [];
    for (let o = p; caps.length < 64; o += 8) {
      const cap = k.identAt(o);
      if (cap === undefined) break;
      caps.push(cap);
    }
    return caps;
  }
  throw bad(k.path, 'no selinux_policycap_names (network_peer_controls, open_perms, …)');
}

/** SELinux's built-in tables of the kernel `vmlinuz` (a bzImage). */
export async function readKernelSelinux(vmlinuz: string): Promise<KernelSelinux> {
  const k = new KernelImage(await kernelElf(vmlinuz), vmlinuz);
  return { classes: readClasses(k), initialSids: readInitialSids(k), policycaps: readPolicycaps(k) };
}

// The names the kernel once gave the SIDs it no longer uses (refpolicy's policy/flask/initial_sids):
// a policy still declares them, because a SID's number is its position in `sidorder`.
const RETIRED_SIDS: Readonly<Record<number, string>> = {
  4: 'fs',
  6: 'file_labels',
  7: 'init',
  13: 'igmp_packet',
  14: 'icmp_socket',
  15: 'tcp_socket',
  16: 'sysctl_modprobe',
  17: 'sysctl',
  18: 'sysctl_fs',
  19: 'sysctl_kernel',
  20: 'sysctl_net',
  21: 'sysctl_net_unix',
  22: 'sysctl_vm',
  23: 'sysctl_dev',
  24: 'kmod',
  25: 'policy',
  26: 'scmp_packet',
};

/** The SID names in SID order (1 …), a retired slot under its historical name. */
export function sidNames(sids: readonly (string | null)[]): string[] {
  return sids.slice(1).map((s, i) => {
    const name = s ?? RETIRED_SIDS[i + 1];
    if (name === undefined) throw new RangeError(`Initial SID ${i + 1} has no name`);
    return name;
  });
}

/**
 * The CIL of the kernel's classes, permissions, class order and initial SIDs: the file
 * layers/selinux/kernel-classes.cil, written by `npm run selinux:classes`.
 */
export function kernelClassesCil(ks: KernelSelinux, source: { release: string; sha256: string }): string {
  const lines = [
    ';; GENERATED by scripts/selinux-classes.ts from the kernel MilkyWayLinux ships; do not edit.',
    `;; Kernel ${source.release}, vmlinuz sha256 ${source.sha256}.`,
    `;; Its secclass_map: ${ks.classes.length} classes, in the kernel's order (a class's number is its`,
    ';; position); initial SIDs in SID order, retired ones under their historical names.',
    `;; Policy capabilities this kernel knows: ${ks.policycaps.join(' ')}.`,
    '',
  ];
  for (const c of ks.classes) lines.push(`(class ${c.name} (${c.perms.join(' ')}))`);
  lines.push(`(classorder (${ks.classes.map((c) => c.name).join(' ')}))`, '');
  const sids = sidNames(ks.initialSids);
  for (const s of sids) lines.push(`(sid ${s})`);
  lines.push(`(sidorder (${sids.join(' ')}))`, '');
  return lines.join('\n');
}
