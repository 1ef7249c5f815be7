// Reading files from the root directory of an ISO 9660 volume without mounting it (ECMA-119
// 4th ed.: volume descriptors from sector 16, §8; the primary descriptor's fields, §8.4;
// directory records, §9.1). Names come from the Joliet tree when there is one (a supplementary
// descriptor with escape sequence %/@, %/C or %/E: UCS-2 big-endian names), else from Rock
// Ridge NM entries (SUSP 1.12 / RRIP 1.12), else the plain ISO name without its `;1` — the way
// Linux's isofs picks them. `genisoimage -volid cidata -joliet -rock` (cloud-init's own
// example) writes both Joliet and Rock Ridge.
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

const SECTOR = 2048;
const FIRST_DESCRIPTOR = 16;
/** Descriptors read before giving up on a terminator (ECMA-119 puts no bound on the set). */
const MAX_DESCRIPTORS = 32;
/** A root directory longer than this is not a seed volume's. */
const MAX_ROOT_BYTES = 1 << 20;

interface Descriptor {
  joliet: boolean;
  label: string;
  blockSize: number;
  rootExtent: number;
  rootSize: number;
}

function ucs2(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i + 1 < b.length; i += 2)
    s += String.fromCharCode(((b[i] as number) << 8) | (b[i + 1] as number));
  return s;
}

/** ECMA-119 §8.4: the fields of a primary (type 1) or supplementary (type 2) descriptor. */
function descriptor(d: Uint8Array, source: string | undefined): Descriptor {
  const v = view(d);
  const esc = Buffer.from(d.subarray(88, 120)).toString('latin1');
  const joliet = d[0] === 2 && /^%\/[@CE]/.test(esc);
  const blockSize = v.getUint16(128, true);
  if (![512, 1024, 2048].includes(blockSize))
    throw unreadable(source, `ISO 9660 logical block size ${blockSize}`);
  // The root directory record (§8.4.18) is 34 bytes at offset 156.
  const root = d.subarray(156, 190);
  return {
    joliet,
    label: joliet ? ucs2(d.subarray(40, 72)).replace(/[ \0]+$/, '') : paddedText(d.subarray(40, 72)),
    blockSize,
    rootExtent: view(root).getUint32(2, true),
    rootSize: view(root).getUint32(10, true),
  };
}

async function descriptors(readAt: ReadAt, source: string | undefined): Promise<Descriptor[] | undefined> {
  const out: Descriptor[] = [];
  for (let i = 0; i < MAX_DESCRIPTORS; i++) {
    const d = await readAt((FIRST_DESCRIPTOR + i) * SECTOR, SECTOR);
    if (d.length < SECTOR || Buffer.from(d.subarray(1, 6)).toString('latin1') !== 'CD001') {
      if (i === 0) return undefined;
      throw unreadable(source, `ISO 9660 volume descriptor ${i} is missing or has no CD001 mark`);
    }
    if (d[0] === 255) return out;
    if (d[0] === 1 || d[0] === 2) out.push(descriptor(d, source));
  }
  throw unreadable(source, `no ISO 9660 set terminator in the first ${MAX_DESCRIPTORS} descriptors`);
}

/** SUSP 1.12 §5 / RRIP 1.12 §4.1.4: the NM entries of a record's system use area, joined. */
function rockRidgeName(su: Uint8Array): string | undefined {
  let name: string | undefined;
  for (let at = 0; at + 4 <= su.length; ) {
    const len = su[at + 2] as number;
    if (len < 4 || at + len > su.length) break;
    const sig = Buffer.from(su.subarray(at, at + 2)).toString('latin1');
    // NM flags: 0x02 "." and 0x04 ".." are no names; 0x01 continues in the next NM.
    if (sig === 'NM' && len >= 5 && ((su[at + 4] as number) & 0x06) === 0)
      name = (name ?? '') + Buffer.from(su.subarray(at + 5, at + len)).toString('utf8');
    if (sig === 'ST') break;
    at += len;
  }
  return name;
}

interface DirRecord {
  name: string;
  dir: boolean;
  extent: number;
  size: number;
}

/** ECMA-119 §9.1: the records of a directory; a zero length byte skips to the next sector. */
function records(dir: Uint8Array, joliet: boolean, source: string | undefined): DirRecord[] {
  const out: DirRecord[] = [];
  for (let at = 0; at < dir.length; ) {
    const len = dir[at] as number;
    if (len === 0) {
      at = (Math.floor(at / SECTOR) + 1) * SECTOR;
      continue;
    }
    if (len < 34 || at + len > dir.length)
      throw unreadable(source, `ISO 9660 directory record at ${at} has length ${len}`);
    const r = dir.subarray(at, at + len);
    const v = view(r);
    const nameLen = r[32] as number;
    if (33 + nameLen > len)
      throw unreadable(source, `ISO 9660 directory record at ${at} has a name past its end`);
    const raw = r.subarray(33, 33 + nameLen);
    at += len;
    // The first two records are the directory itself and its parent (names 0x00 and 0x01).
    if (nameLen === 1 && ((raw[0] as number) === 0 || (raw[0] as number) === 1)) continue;
    const su = r.subarray(33 + nameLen + (nameLen % 2 === 0 ? 1 : 0));
    const name = joliet ? ucs2(raw) : (rockRidgeName(su) ?? paddedText(raw).toLowerCase());
    out.push({
      name: name.replace(/;\d+$/, '').replace(/\.$/, ''),
      dir: ((r[25] as number) & 0x02) !== 0,
      extent: v.getUint32(2, true),
      size: v.getUint32(10, true),
    });
  }
  return out;
}

async function rootRecords(
  readAt: ReadAt,
  source: string | undefined,
): Promise<{ d: Descriptor; list: DirRecord[] } | undefined> {
  const all = await descriptors(readAt, source);
  if (all === undefined) return undefined;
  const d = all.find((x) => x.joliet) ?? all.find((x) => !x.joliet);
  if (d === undefined) throw unreadable(source, 'ISO 9660 volume without a primary volume descriptor');
  if (d.rootSize > MAX_ROOT_BYTES) throw unreadable(source, `ISO 9660 root directory of ${d.rootSize} bytes`);
  const dir = await readExactly(
    readAt,
    d.rootExtent * d.blockSize,
    d.rootSize,
    source,
    'ISO 9660 root directory',
  );
  return { d, list: records(dir, d.joliet, source) };
}

/** The volume identifier as blkid reports it (the primary descriptor's, §8.4.6). */
export async function probeIso9660(readAt: ReadAt, source?: string): Promise<VolumeInfo | undefined> {
  const all = await descriptors(readAt, source);
  if (all === undefined) return undefined;
  const primary = all.find((x) => !x.joliet) ?? all[0];
  return { type: 'iso9660', label: primary?.label ?? '' };
}

/**
 * The files called `names` in the root directory (exact names, as Joliet and Rock Ridge keep
 * them; a plain ISO name is compared in lower case); a missing one is left out of the map.
 */
export async function readIso9660RootFiles(
  readAt: ReadAt,
  names: readonly string[],
  o: RootFileOptions,
): Promise<RootFiles> {
  const root = await rootRecords(readAt, o.source);
  if (root === undefined) throw unreadable(o.source, 'not an ISO 9660 file system');
  const out: RootFiles = new Map();
  for (const want of names) {
    const r = root.list.find((x) => x.name === want);
    if (r === undefined) continue;
    if (r.dir) throw unreadable(o.source, `${want} is a directory`);
    if (r.size > o.maxBytes) throw unreadable(o.source, `${want} is ${r.size} bytes, above ${o.maxBytes}`);
    out.set(want, await readExactly(readAt, r.extent * root.d.blockSize, r.size, o.source, want));
  }
  return out;
}
