// The update bundle container (doc/update-bundle.md, "Container"): a strict ustar holding
// bundle.json (the vendor-signed `update` envelope whose payload is the manifest), then the
// CoreOS erofs, its dm-verity tree, its verity signature and the slot's stage-2 image, in
// that order. The header is
// formats/tar's field table; this file adds the bundle's rules. Offsets are kept so the agent
// verifies and copies CoreOS straight out of the file, and the erofs starts 4096-aligned.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { decodeUstarHeader, encodeUstarHeader, isFormatError, TAR_BLOCK } from '../formats/index.ts';
import { type Envelope, serialize } from '../keys/index.ts';
import { BUNDLE_MEMBERS, MANIFEST_MEMBER } from './bundle-manifest.ts';
import { UpdateError } from './update-error.ts';

/** bundle.json's cap: an envelope with a vendor chain is a few tens of KiB. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;
const pad512 = (n: number): number => Math.ceil(n / TAR_BLOCK) * TAR_BLOCK;

export interface BundleMember {
  name: string;
  /** Byte offset of the member's data in the bundle file. */
  offset: number;
  size: number;
}

export interface BundleLayout {
  /** The envelope bytes (canonical JSON, padding removed). */
  envelope: Uint8Array;
  /** coreos.erofs, coreos.verity, coreos.verity-sig, stage2. */
  members: readonly [BundleMember, BundleMember, BundleMember, BundleMember];
  fileSize: number;
}

function header(name: string, size: number, mtime: number): Uint8Array {
  return encodeUstarHeader({ name, mode: 0o644, uid: 0, gid: 0, size, mtime, typeflag: '0' });
}

/**
 * Writes the bundle: `envelope` (already signed), then each payload file. bundle.json is padded
 * with spaces and a final newline so the erofs data starts at a multiple of 4096.
 */
export async function writeBundle(
  out: string,
  o: { envelope: Envelope; files: readonly [string, string, string, string]; mtime: number },
): Promise<void> {
  const json = serialize(o.envelope);
  // 512 (header) + padded json + 512 (next header) ≡ 0 mod 4096.
  let padded = pad512(json.length + 1);
  while ((TAR_BLOCK + padded + TAR_BLOCK) % 4096 !== 0) padded += TAR_BLOCK;
  const manifest = Buffer.alloc(padded, 0x20);
  manifest.set(json);
  manifest[padded - 1] = 0x0a;
  const fh = await open(out, 'wx', 0o644);
  try {
    let pos = 0;
    const put = async (b: Uint8Array) => {
      await fh.write(b, 0, b.length, pos);
      pos += b.length;
    };
    await put(header(MANIFEST_MEMBER, padded, o.mtime));
    await put(manifest);
    for (const [i, m] of BUNDLE_MEMBERS.entries()) {
      const src = await open(o.files[i] as string, 'r');
      try {
        const size = (await src.stat()).size;
        await put(header(m.name, size, o.mtime));
        const buf = Buffer.alloc(4 * 1024 * 1024);
        for (let off = 0; off < size; ) {
          const { bytesRead } = await src.read(buf, 0, Math.min(buf.length, size - off), off);
          if (bytesRead === 0)
            throw new UpdateError('E_BUNDLE_READ', `${o.files[i]} shrank while being read`);
          await put(buf.subarray(0, bytesRead));
          off += bytesRead;
        }
        await put(new Uint8Array(pad512(size) - size));
      } finally {
        await src.close();
      }
    }
    await put(new Uint8Array(2 * TAR_BLOCK));
  } finally {
    await fh.close();
  }
}

function readAt(fd: number, pos: number, len: number, fileSize: number, what: string): Uint8Array {
  if (pos + len > fileSize)
    throw new UpdateError(
      'E_BUNDLE_TRUNCATED',
      `Cannot read update bundle: it ends at byte ${fileSize}, before ${what} (bytes ${pos}…${pos + len})`,
      { details: { offset: pos, fileSize } },
    );
  const b = new Uint8Array(len);
  let got = 0;
  while (got < len) {
    const n = readSync(fd, b, got, len - got, pos + got);
    if (n === 0)
      throw new UpdateError('E_BUNDLE_TRUNCATED', `Cannot read update bundle: it ends at ${pos + got}`);
    got += n;
  }
  return b;
}

function malformed(message: string, details: Record<string, unknown> = {}): UpdateError {
  return new UpdateError('E_BUNDLE_MALFORMED', `Not an update bundle: ${message}`, { details });
}

/** bundle.json's envelope: canonical JSON, then spaces, then one newline — nothing else may ride along unsigned. */
function unpadManifest(raw: Uint8Array): Uint8Array {
  let cut = raw.length - 1;
  if (raw[cut] !== 0x0a) throw malformed(`${MANIFEST_MEMBER} does not end in a newline`);
  while (cut > 0 && raw[cut - 1] === 0x20) cut--;
  return raw.subarray(0, cut);
}

/**
 * The envelope from the first bytes of a bundle (a peer's first received piece), read with the
 * same rules as `readBundleLayout`; null when `head` ends before bundle.json does. The rest of
 * the container is not looked at: the whole file is verified once it is all there.
 */
export function readBundleHead(head: Uint8Array): Uint8Array | null {
  if (head.length < TAR_BLOCK) return null;
  let h: ReturnType<typeof decodeUstarHeader>;
  try {
    h = decodeUstarHeader(head.subarray(0, TAR_BLOCK), 0);
  } catch (e) {
    if (!isFormatError(e)) throw e;
    throw new UpdateError('E_BUNDLE_MALFORMED', `Not an update bundle: ${e.message}`, {
      details: { offset: 0, member: MANIFEST_MEMBER },
      cause: e,
    });
  }
  if (h === null || h.name !== MANIFEST_MEMBER || h.typeflag !== '0')
    throw malformed(`the first member is not the regular file ${MANIFEST_MEMBER}`, {
      member: MANIFEST_MEMBER,
    });
  if (h.size < 2 || h.size > MAX_MANIFEST_BYTES)
    throw malformed(`${MANIFEST_MEMBER} is ${h.size} bytes (at most ${MAX_MANIFEST_BYTES})`, {
      member: MANIFEST_MEMBER,
    });
  if (head.length < TAR_BLOCK + h.size) return null;
  return unpadManifest(head.subarray(TAR_BLOCK, TAR_BLOCK + h.size));
}

/**
 * Reads the container's structure (no trust yet): the five members in order, each a regular
 * file with a plain name, the end-of-archive blocks and nothing after them. A file cut short
 * anywhere is E_BUNDLE_TRUNCATED.
 */
export function readBundleLayout(path: string): BundleLayout {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new UpdateError('E_BUNDLE_READ', `Cannot open update bundle ${path}: ${(e as Error).message}`, {
      path,
      cause: e,
    });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new UpdateError('E_BUNDLE_READ', `${path} is not a regular file`, { path });
    const fileSize = st.size;
    let pos = 0;
    const names = [MANIFEST_MEMBER, ...BUNDLE_MEMBERS.map((m) => m.name)];
    const found: BundleMember[] = [];
    for (const name of names) {
      const block = readAt(fd, pos, TAR_BLOCK, fileSize, `the ${name} header`);
      let h: ReturnType<typeof decodeUstarHeader>;
      try {
        h = decodeUstarHeader(block, pos);
      } catch (e) {
        if (!isFormatError(e)) throw e;
        throw new UpdateError('E_BUNDLE_MALFORMED', `Not an update bundle: ${e.message}`, {
          details: { offset: pos, member: name },
          cause: e,
        });
      }
      if (h === null)
        throw malformed(`member ${name} is missing (end of archive at byte ${pos})`, { member: name });
      if (h.name !== name)
        throw malformed(`member at byte ${pos} is ${JSON.stringify(h.name)}, expected ${name}`, {
          member: name,
        });
      if (h.typeflag !== '0') throw malformed(`${name} is not a regular file`, { member: name });
      if (name === MANIFEST_MEMBER && (h.size < 2 || h.size > MAX_MANIFEST_BYTES))
        throw malformed(`${name} is ${h.size} bytes (at most ${MAX_MANIFEST_BYTES})`, { member: name });
      found.push({ name, offset: pos + TAR_BLOCK, size: h.size });
      pos += TAR_BLOCK + pad512(h.size);
      if (pos > fileSize)
        throw new UpdateError(
          'E_BUNDLE_TRUNCATED',
          `Cannot read update bundle: ${name} needs ${h.size} bytes, the file ends at ${fileSize}`,
          { details: { member: name, fileSize } },
        );
    }
    const end = readAt(fd, pos, 2 * TAR_BLOCK, fileSize, 'the end-of-archive blocks');
    if (!end.every((b) => b === 0)) throw malformed(`a sixth member or data at byte ${pos}`);
    if (pos + 2 * TAR_BLOCK !== fileSize)
      throw malformed(`${fileSize - pos - 2 * TAR_BLOCK} bytes after the end of the archive`);
    const m = found[0] as BundleMember;
    const envelope = unpadManifest(readAt(fd, m.offset, m.size, fileSize, MANIFEST_MEMBER));
    const members = found.slice(1) as [BundleMember, BundleMember, BundleMember, BundleMember];
    if ((members[0].offset & 4095) !== 0)
      throw malformed('coreos.erofs does not start at a multiple of 4096');
    return { envelope, members, fileSize };
  } finally {
    closeSync(fd);
  }
}
