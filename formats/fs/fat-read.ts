// Reading files from the root directory of a FAT12/16/32 volume without mounting it
// (Microsoft "FAT: General Overview of On-Disk Format" 1.03, fatgen103: the BPB in section 3,
// the FAT type by cluster count in section 3.5, FAT entries in section 4, directory entries
// in section 6, long names in section 7). Every value read from the volume that becomes an
// offset or a length is range-checked first, cluster chains are bounded by the file size
// asked for, and a loop in a chain is caught by that bound.
import { fieldTable } from '../_field-table.ts';
import {
  paddedText,
  type ReadAt,
  type RootFileOptions,
  type RootFiles,
  readExactly,
  unreadable,
  type VolumeInfo,
  view,
} from './volume-read.ts';

const S = 'fatgen103 §3.1–3.3';
/** The boot sector's BIOS Parameter Block, the part FAT12, 16 and 32 share. */
export const FAT_BPB = fieldTable('FAT boot sector', 512, [
  { name: 'bytesPerSector', offset: 11, size: 2, type: 'u16', spec: `${S}: BPB_BytsPerSec` },
  { name: 'sectorsPerCluster', offset: 13, size: 1, type: 'u8', spec: `${S}: BPB_SecPerClus` },
  { name: 'reservedSectors', offset: 14, size: 2, type: 'u16', spec: `${S}: BPB_RsvdSecCnt` },
  { name: 'fats', offset: 16, size: 1, type: 'u8', spec: `${S}: BPB_NumFATs` },
  { name: 'rootEntries', offset: 17, size: 2, type: 'u16', spec: `${S}: BPB_RootEntCnt (0 on FAT32)` },
  { name: 'totalSectors16', offset: 19, size: 2, type: 'u16', spec: `${S}: BPB_TotSec16` },
  { name: 'fatSize16', offset: 22, size: 2, type: 'u16', spec: `${S}: BPB_FATSz16 (0 on FAT32)` },
  { name: 'totalSectors32', offset: 32, size: 4, type: 'u32', spec: `${S}: BPB_TotSec32` },
  { name: 'signature', offset: 510, size: 2, type: 'u16', spec: `${S}: 0xAA55 at offset 510` },
]);

/** The FAT12/16 tail of the boot sector (fatgen103 §3.2). */
export const FAT16_TAIL = fieldTable('FAT12/16 boot sector tail', 512, [
  { name: 'bootSig', offset: 38, size: 1, type: 'u8', spec: `${S}: BS_BootSig` },
  { name: 'label', offset: 43, size: 11, type: 'bytes', spec: `${S}: BS_VolLab` },
]);

/** The FAT32 tail of the boot sector (fatgen103 §3.3). */
export const FAT32_TAIL = fieldTable('FAT32 boot sector tail', 512, [
  { name: 'fatSize32', offset: 36, size: 4, type: 'u32', spec: `${S}: BPB_FATSz32` },
  { name: 'rootCluster', offset: 44, size: 4, type: 'u32', spec: `${S}: BPB_RootClus` },
  { name: 'bootSig', offset: 66, size: 1, type: 'u8', spec: `${S}: BS_BootSig` },
  { name: 'label', offset: 71, size: 11, type: 'bytes', spec: `${S}: BS_VolLab` },
]);

const DIR_ENTRY = 32;
const ATTR_LONG_NAME = 0x0f;
const ATTR_VOLUME_ID = 0x08;
const ATTR_DIRECTORY = 0x10;
/** A root directory longer than this is not a seed volume's (fatgen103 allows 65,535 entries). */
const MAX_ROOT_ENTRIES = 4096;

interface Geometry {
  kind: 12 | 16 | 32;
  bytesPerSector: number;
  clusterBytes: number;
  fatOffset: number;
  /** FAT12/16: the fixed root directory region. */
  rootOffset: number;
  rootBytes: number;
  rootCluster: number;
  dataOffset: number;
  clusters: number;
  bpbLabel: string;
}

async function geometry(readAt: ReadAt, source: string | undefined): Promise<Geometry | undefined> {
  const sector = await readAt(0, 512);
  if (sector.length < 512) return undefined;
  const b = FAT_BPB.decode(sector);
  const t16 = FAT16_TAIL.decode(sector);
  const t32 = FAT32_TAIL.decode(sector);
  if (b.signature !== 0xaa55) return undefined;
  const bps = b.bytesPerSector;
  const spc = b.sectorsPerCluster;
  // Not a FAT boot sector at all (an ISO, a partition table): not ours, not an error.
  if (![512, 1024, 2048, 4096].includes(bps) || ![1, 2, 4, 8, 16, 32, 64, 128].includes(spc))
    return undefined;
  if (b.reservedSectors < 1 || b.fats < 1 || b.fats > 4)
    throw unreadable(source, `FAT boot sector has ${b.reservedSectors} reserved sectors and ${b.fats} FATs`);
  const fatSize = b.fatSize16 !== 0 ? b.fatSize16 : t32.fatSize32;
  const total = b.totalSectors16 !== 0 ? b.totalSectors16 : b.totalSectors32;
  const rootSectors = Math.ceil((b.rootEntries * DIR_ENTRY) / bps);
  const meta = b.reservedSectors + b.fats * fatSize + rootSectors;
  if (fatSize === 0 || total <= meta)
    throw unreadable(
      source,
      `FAT boot sector's sizes do not fit (${total} sectors, ${meta} before the data)`,
    );
  const clusters = Math.floor((total - meta) / spc);
  // fatgen103 §3.5: the type is decided by the cluster count and nothing else.
  const kind = clusters < 4085 ? 12 : clusters < 65525 ? 16 : 32;
  if (kind === 32 && (b.rootEntries !== 0 || t32.fatSize32 === 0))
    throw unreadable(source, 'FAT32 volume with a fixed root directory');
  if (kind !== 32 && b.rootEntries === 0)
    throw unreadable(source, `FAT${kind} volume without root directory entries`);
  return {
    kind,
    bytesPerSector: bps,
    clusterBytes: bps * spc,
    fatOffset: b.reservedSectors * bps,
    rootOffset: (b.reservedSectors + b.fats * fatSize) * bps,
    rootBytes: rootSectors * bps,
    rootCluster: t32.rootCluster,
    dataOffset: meta * bps,
    clusters,
    bpbLabel: ((t) => (t.bootSig === 0x29 ? paddedText(t.label) : ''))(kind === 32 ? t32 : t16),
  };
}

/** The FAT entry of `cluster` (fatgen103 §4: 12-bit entries straddle bytes). */
async function next(
  readAt: ReadAt,
  g: Geometry,
  cluster: number,
  source: string | undefined,
): Promise<number> {
  if (g.kind === 12) {
    const at = g.fatOffset + cluster + (cluster >> 1);
    const v = view(await readExactly(readAt, at, 2, source, 'FAT entry')).getUint16(0, true);
    return cluster & 1 ? v >> 4 : v & 0xfff;
  }
  if (g.kind === 16)
    return view(await readExactly(readAt, g.fatOffset + cluster * 2, 2, source, 'FAT entry')).getUint16(
      0,
      true,
    );
  return (
    view(await readExactly(readAt, g.fatOffset + cluster * 4, 4, source, 'FAT entry')).getUint32(0, true) &
    0x0fffffff
  );
}

function endOfChain(g: Geometry, v: number): boolean {
  return v >= (g.kind === 12 ? 0xff8 : g.kind === 16 ? 0xfff8 : 0x0ffffff8);
}

/** The bytes of the chain starting at `first`, at most `limit` of them (a longer chain is cut). */
async function readChain(
  readAt: ReadAt,
  g: Geometry,
  first: number,
  limit: number,
  source: string | undefined,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let have = 0;
  let c = first;
  // Bounded by `limit`, so the set of clusters seen stays small; a cluster seen twice is a loop.
  const seen = new Set<number>();
  while (have < limit) {
    if (c < 2 || c > g.clusters + 1)
      throw unreadable(source, `FAT cluster chain from ${first} reaches cluster ${c}, outside the volume`);
    if (seen.has(c)) throw unreadable(source, `FAT cluster chain from ${first} loops at cluster ${c}`);
    seen.add(c);
    const n = Math.min(g.clusterBytes, limit - have);
    parts.push(await readExactly(readAt, g.dataOffset + (c - 2) * g.clusterBytes, n, source, `cluster ${c}`));
    have += n;
    if (have >= limit) break;
    const v = await next(readAt, g, c, source);
    if (endOfChain(g, v)) break;
    c = v;
  }
  const out = new Uint8Array(have);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** fatgen103 §7.2: the checksum a long name's entries carry of their short name. */
function shortNameChecksum(name: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = (((sum & 1) << 7) + (sum >> 1) + (name[i] as number)) & 0xff;
  return sum;
}

function shortName(e: Uint8Array): string {
  const text = (b: Uint8Array, lower: boolean) => {
    const s = Buffer.from(b).toString('latin1').replace(/ +$/, '');
    return lower ? s.toLowerCase() : s;
  };
  // NT's case bits (byte 12): 0x08 base, 0x10 extension in lower case.
  const base = text(e.subarray(0, 8), ((e[12] as number) & 0x08) !== 0);
  const ext = text(e.subarray(8, 11), ((e[12] as number) & 0x10) !== 0);
  const first = e[0] === 0x05 ? `\u00e5${base.slice(1)}` : base;
  return ext === '' ? first : `${first}.${ext}`;
}

interface Entry {
  name: string;
  attr: number;
  cluster: number;
  size: number;
}

/** Directory entries of `dir` with their long names (fatgen103 §6, §7). */
function entries(dir: Uint8Array, kind: 12 | 16 | 32): { list: Entry[]; label?: string } {
  const list: Entry[] = [];
  let label: string | undefined;
  let long: string[] = [];
  let longSum = -1;
  for (let at = 0; at + DIR_ENTRY <= dir.length; at += DIR_ENTRY) {
    const e = dir.subarray(at, at + DIR_ENTRY);
    if (e[0] === 0x00) break;
    if (e[0] === 0xe5) {
      long = [];
      continue;
    }
    const attr = e[11] as number;
    if ((attr & 0x3f) === ATTR_LONG_NAME) {
      const seq = e[0] as number;
      const chars = Buffer.concat([e.subarray(1, 11), e.subarray(14, 26), e.subarray(28, 32)]);
      let part = '';
      for (let i = 0; i + 1 < chars.length; i += 2) {
        const u = (chars[i] as number) | ((chars[i + 1] as number) << 8);
        if (u === 0 || u === 0xffff) break;
        part += String.fromCharCode(u);
      }
      if (seq & 0x40) {
        long = [];
        longSum = e[13] as number;
      }
      long[(seq & 0x1f) - 1] = part;
      continue;
    }
    const d = view(e);
    if (attr & ATTR_VOLUME_ID) {
      if ((attr & ATTR_DIRECTORY) === 0) label = paddedText(e.subarray(0, 11));
      long = [];
      continue;
    }
    const useLong =
      long.length > 0 &&
      longSum === shortNameChecksum(e.subarray(0, 11)) &&
      long.every((p) => p !== undefined);
    list.push({
      name: useLong ? long.join('') : shortName(e),
      attr,
      cluster: (kind === 32 ? d.getUint16(20, true) << 16 : 0) | d.getUint16(26, true),
      size: d.getUint32(28, true),
    });
    long = [];
  }
  return { list, ...(label === undefined ? {} : { label }) };
}

async function rootDirectory(readAt: ReadAt, g: Geometry, source: string | undefined): Promise<Uint8Array> {
  if (g.kind !== 32) {
    const bytes = Math.min(g.rootBytes, MAX_ROOT_ENTRIES * DIR_ENTRY);
    return readExactly(readAt, g.rootOffset, bytes, source, 'root directory');
  }
  return readChain(readAt, g, g.rootCluster, MAX_ROOT_ENTRIES * DIR_ENTRY, source);
}

/** The volume's label as blkid reports it (the root directory's label entry, else the boot sector's). */
export async function probeFat(readAt: ReadAt, source?: string): Promise<VolumeInfo | undefined> {
  const g = await geometry(readAt, source);
  if (g === undefined) return undefined;
  const { label } = entries(await rootDirectory(readAt, g, source), g.kind);
  return { type: 'vfat', label: label ?? g.bpbLabel };
}

/**
 * The files called `names` in the root directory (names compare without case, as FAT does);
 * a name that is not there is left out of the map. A directory of that name, or a file above
 * `maxBytes`, is E_FS_UNREADABLE.
 */
export async function readFatRootFiles(
  readAt: ReadAt,
  names: readonly string[],
  o: RootFileOptions,
): Promise<RootFiles> {
  const g = await geometry(readAt, o.source);
  if (g === undefined) throw unreadable(o.source, 'not a FAT file system');
  const { list } = entries(await rootDirectory(readAt, g, o.source), g.kind);
  const out: RootFiles = new Map();
  for (const want of names) {
    const e = list.find((x) => x.name.toLowerCase() === want.toLowerCase());
    if (e === undefined) continue;
    if (e.attr & ATTR_DIRECTORY) throw unreadable(o.source, `${want} is a directory`);
    if (e.size > o.maxBytes) throw unreadable(o.source, `${want} is ${e.size} bytes, above ${o.maxBytes}`);
    out.set(want, e.size === 0 ? new Uint8Array() : await readFileChain(readAt, g, e, o.source));
  }
  return out;
}

async function readFileChain(
  readAt: ReadAt,
  g: Geometry,
  e: Entry,
  source: string | undefined,
): Promise<Uint8Array> {
  const b = await readChain(readAt, g, e.cluster, e.size, source);
  if (b.length !== e.size)
    throw unreadable(source, `${e.name}: its cluster chain holds ${b.length} of its ${e.size} bytes`);
  return b;
}
