// `readLayer`: the strict structural parse of a .mwl. Reads every tar header (never the
// payload), enforces the member order, names, types, size caps and alignment, and parses
// the manifest and signatures. No trust yet: verifyLayer checks signatures and data.
import type { FileHandle } from 'node:fs/promises';
import { openRegularFile } from '../common/index.ts';
import { canonicalJson, type Signature } from '../keys/index.ts';
import { BLOCK_SIZE, USTAR_HEADER, verityGeometry } from '../formats/index.ts';
import { LayerError } from './layer-error.ts';
import { type LayerManifest, MAX_MANIFEST, MAX_POLICY, validateManifest } from './manifest.ts';
import { BLOCK, decodeHeader, encodeHeader, pad512 } from './mwl-tar.ts';

export const MAX_SIGNATURES = 8;
export const MAX_SIGNATURE_MEMBER = 256 * 1024;
/** layer.json carries the canonical manifest plus at most this much space padding. */
export const MANIFEST_PAD_MAX = 4096;
/** Bytes after the end-of-archive marker that may follow (zeros only, tar record padding). */
const MAX_TRAILER = 10240;

export interface LayerMember {
  name: string;
  /** Byte offset of the header in the .mwl. */
  headerOffset: number;
  /** Byte offset of the data in the .mwl (512-aligned; payload.erofs is 4096-aligned). */
  offset: number;
  size: number;
  /** The header's mtime: every member's is the manifest's `created` (SOURCE_DATE_EPOCH). */
  mtime: number;
}

export interface LayerFile {
  path: string;
  manifest: LayerManifest;
  /** The manifest exactly as signed (parsed JSON, no defaults added). */
  manifestJson: unknown;
  /** The canonical manifest bytes the signatures cover. */
  manifestBytes: Uint8Array;
  members: LayerMember[];
  signatures: Signature[];
  policy: Uint8Array | undefined;
  payloadOffset: number;
  payloadSize: number;
  verityOffset: number;
  veritySize: number;
  /** Byte offset just after the last member (where the end-of-archive marker starts). */
  end: number;
  fileSize: number;
}

export const SIGNATURE_NAME = /^signature\.([1-9][0-9]?)\.json$/;
const FIXED = ['layer.json', 'payload.erofs', 'payload.verity', 'policy.cil'];

async function readAt(
  fh: FileHandle,
  offset: number,
  length: number,
  path: string,
  what: string,
): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
    if (bytesRead === 0) {
      throw new LayerError('E_LAYER_TRUNCATED', `${path} ends at byte ${offset + got}, inside ${what}`, {
        path,
        details: { offset: offset + got },
      });
    }
    got += bytesRead;
  }
  return buf;
}

function sizeCap(name: string): number {
  if (name === 'layer.json') return MAX_MANIFEST + MANIFEST_PAD_MAX;
  if (name === 'policy.cil') return MAX_POLICY;
  if (SIGNATURE_NAME.test(name)) return MAX_SIGNATURE_MEMBER;
  return 2 ** 44;
}

/** The ustar field holding header byte `at` (formats/tar's field table), for messages. */
function headerField(at: number): string {
  return USTAR_HEADER.fields.find((f) => at >= f.offset && at < f.offset + f.size)?.name ?? 'reserved';
}

/** Walks the headers; each structural problem has its own code. */
async function scanMembers(
  fh: FileHandle,
  path: string,
  fileSize: number,
): Promise<{ members: LayerMember[]; end: number }> {
  const members: LayerMember[] = [];
  const seen = new Set<string>();
  let pos = 0;
  for (;;) {
    if (members.length > FIXED.length + MAX_SIGNATURES) {
      throw new LayerError(
        'E_LAYER_MEMBER_EXTRA',
        `${path} has more than ${FIXED.length + MAX_SIGNATURES} members`,
        { path },
      );
    }
    const h = await readAt(fh, pos, BLOCK, path, 'a tar header');
    const hdr = decodeHeader(h, pos);
    if (hdr === null) break;
    const { name } = hdr;
    if (name.startsWith('/') || name.split('/').includes('..') || name.includes('/')) {
      throw new LayerError(
        'E_LAYER_PATH',
        `${path}: member ${JSON.stringify(name)} is a path, not a plain name (absolute, traversal or subdirectory)`,
        { path, details: { member: name } },
      );
    }
    if (hdr.typeflag !== '0' && hdr.typeflag !== '\0') {
      const kind =
        hdr.typeflag === '1'
          ? 'hard link'
          : hdr.typeflag === '2'
            ? 'symbolic link'
            : `type ${JSON.stringify(hdr.typeflag)}`;
      throw new LayerError(
        'E_LAYER_MEMBER_TYPE',
        `${path}: member ${JSON.stringify(name)} is a ${kind}; only regular files are allowed`,
        { path, details: { member: name } },
      );
    }
    if (!FIXED.includes(name) && !SIGNATURE_NAME.test(name)) {
      throw new LayerError('E_LAYER_MEMBER_EXTRA', `${path}: unexpected member ${JSON.stringify(name)}`, {
        path,
        details: { member: name },
      });
    }
    if (seen.has(name)) {
      throw new LayerError(
        'E_LAYER_MEMBER_DUPLICATE',
        `${path}: member ${JSON.stringify(name)} appears twice`,
        { path, details: { member: name } },
      );
    }
    seen.add(name);
    if (hdr.size > sizeCap(name)) {
      const code = name === 'layer.json' ? 'E_MANIFEST_TOO_LARGE' : 'E_LAYER_MEMBER_SIZE';
      throw new LayerError(
        code,
        `${path}: member ${name} is ${hdr.size} bytes, at most ${sizeCap(name)} allowed`,
        { path, details: { member: name } },
      );
    }
    const offset = pos + BLOCK;
    if (offset + hdr.size > fileSize) {
      throw new LayerError(
        'E_LAYER_TRUNCATED',
        `${path} ends at byte ${fileSize}, inside member ${name} (needs ${offset + hdr.size})`,
        { path, details: { member: name } },
      );
    }
    // The header must be the one our writer makes for this member, byte for byte (checksum
    // spelling, mode, owner, magic, version, unused fields): nothing in the framing is unsigned slack.
    const canonical = encodeHeader(name, hdr.size, hdr.mtime);
    if (!canonical.equals(h)) {
      const at = canonical.findIndex((b, i) => b !== h[i]);
      throw new LayerError(
        'E_LAYER_TAR',
        `${path}: tar header of ${name} at byte ${pos} differs from the canonical one in its ${headerField(at)} field (byte ${pos + at})`,
        { path, details: { member: name, offset: pos + at } },
      );
    }
    const padding = pad512(hdr.size) - hdr.size;
    if (padding > 0) {
      const pad = await readAt(fh, offset + hdr.size, padding, path, `the padding of ${name}`);
      if (!pad.every((b) => b === 0)) {
        throw new LayerError('E_LAYER_TAR', `${path}: the padding after ${name} is not zero`, {
          path,
          details: { member: name, offset: offset + hdr.size },
        });
      }
    }
    members.push({ name, headerOffset: pos, offset, size: hdr.size, mtime: hdr.mtime });
    pos = offset + pad512(hdr.size);
  }
  // End of archive: two zero blocks, then at most record padding, all zero.
  const tail = fileSize - pos;
  if (tail < 2 * BLOCK)
    throw new LayerError('E_LAYER_TRUNCATED', `${path} lacks the end-of-archive marker`, { path });
  if (tail > 2 * BLOCK + MAX_TRAILER)
    throw new LayerError('E_LAYER_TRAILING', `${path} has ${tail} bytes after its last member`, { path });
  const rest = await readAt(fh, pos, tail, path, 'the end-of-archive marker');
  if (!rest.every((b) => b === 0)) {
    throw new LayerError('E_LAYER_TRAILING', `${path} has data after the end-of-archive marker`, { path });
  }
  return { members, end: pos };
}

function checkOrder(members: LayerMember[], path: string): void {
  const names = members.map((m) => m.name);
  for (const req of ['layer.json', 'payload.erofs', 'payload.verity']) {
    if (!names.includes(req))
      throw new LayerError('E_LAYER_MEMBER_MISSING', `${path} has no ${req}`, {
        path,
        details: { member: req },
      });
  }
  const sigs = names.filter((n) => SIGNATURE_NAME.test(n));
  if (sigs.length === 0)
    throw new LayerError('E_LAYER_UNSIGNED', `${path} has no signature`, {
      path,
      details: { member: 'signature.1.json' },
    });
  if (sigs.length > MAX_SIGNATURES)
    throw new LayerError('E_LAYER_MEMBER_EXTRA', `${path} has more than ${MAX_SIGNATURES} signatures`, {
      path,
    });
  const expected = ['layer.json', 'payload.erofs', 'payload.verity'];
  if (names.includes('policy.cil')) expected.push('policy.cil');
  for (let i = 1; i <= sigs.length; i++) expected.push(`signature.${i}.json`);
  for (let i = 0; i < expected.length; i++) {
    if (names[i] !== expected[i]) {
      const missing = !names.includes(expected[i] as string);
      throw new LayerError(
        missing ? 'E_LAYER_MEMBER_MISSING' : 'E_LAYER_MEMBER_ORDER',
        missing
          ? `${path} has no ${expected[i]} (signatures are numbered 1..N)`
          : `${path}: member ${i + 1} is ${names[i]}, expected ${expected[i]} (order: ${expected.join(', ')})`,
        { path, details: { member: names[i], expected: expected[i] } },
      );
    }
  }
}

function parseManifestMember(
  bytes: Buffer,
  path: string,
): { json: unknown; canonical: Uint8Array; manifest: LayerManifest } {
  // layer.json = canonical JSON, then space padding and one newline (aligns the payload).
  const text = bytes.toString('latin1');
  const m = /^([^\n]*?) *\n$/s.exec(text);
  if (m === null)
    throw new LayerError(
      'E_MANIFEST_JSON',
      `${path}: layer.json is not one line of JSON followed by padding`,
      { path: 'layer.json' },
    );
  const body = bytes.subarray(0, (m[1] as string).length);
  if (body.length > MAX_MANIFEST) {
    throw new LayerError(
      'E_MANIFEST_TOO_LARGE',
      `${path}: layer.json is ${body.length} bytes, at most ${MAX_MANIFEST} allowed`,
      { path: 'layer.json' },
    );
  }
  if (bytes.length - body.length > MANIFEST_PAD_MAX + 1) {
    throw new LayerError(
      'E_MANIFEST_JSON',
      `${path}: layer.json has more than ${MANIFEST_PAD_MAX} bytes of padding`,
      { path: 'layer.json' },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch (e) {
    throw new LayerError(
      'E_MANIFEST_JSON',
      `${path}: layer.json is not UTF-8 JSON: ${(e as Error).message}`,
      { path: 'layer.json', cause: e },
    );
  }
  let canonical: Uint8Array;
  try {
    canonical = canonicalJson(json);
  } catch (e) {
    throw new LayerError('E_MANIFEST_NOT_CANONICAL', `${path}: layer.json cannot be canonicalised`, {
      path: 'layer.json',
      cause: e,
    });
  }
  if (!Buffer.from(canonical).equals(body)) {
    throw new LayerError(
      'E_MANIFEST_NOT_CANONICAL',
      `${path}: layer.json is not in RFC 8785 canonical form`,
      { path: 'layer.json' },
    );
  }
  return { json, canonical, manifest: validateManifest(json) };
}

function parseSignatureMember(bytes: Buffer, name: string, path: string): Signature {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
  } catch (e) {
    throw new LayerError(
      'E_SIGNATURE_MALFORMED',
      `${path}: ${name} is not a JSON signature object: ${(e as Error).message}`,
      { path, details: { member: name } },
    );
  }
  // The member is canonical JSON as written; another spelling of the same object would be
  // bytes of the file that no signature covers.
  let canonical: Uint8Array | undefined;
  try {
    canonical = canonicalJson(v);
  } catch {
    canonical = undefined;
  }
  if (canonical === undefined || !Buffer.from(canonical).equals(bytes)) {
    throw new LayerError('E_SIGNATURE_MALFORMED', `${path}: ${name} is not in RFC 8785 canonical form`, {
      path,
      details: { member: name },
    });
  }
  return v as Signature;
}

/** Opens a .mwl refusing FIFOs, devices, directories (and symlinks, unless followed) by type. */
export async function openLayerFile(path: string, followSymlinks = true): Promise<FileHandle> {
  const { fh } = await openRegularFile(path, {
    what: 'layer',
    followSymlinks,
    readCode: 'E_LAYER_READ',
    error: (code, message, options) => new LayerError(code, message, options),
  });
  return fh;
}

export interface ReadLayerOptions {
  /** Follow a symlink at `path` (default true: a CLI argument); the agent refuses them. */
  followSymlinks?: boolean;
}

/** Parses `path` strictly; throws a LayerError naming the member and problem. */
export async function readLayer(path: string, o: ReadLayerOptions = {}): Promise<LayerFile> {
  const fh = await openLayerFile(path, o.followSymlinks !== false);
  try {
    const fileSize = (await fh.stat()).size;
    const { members, end } = await scanMembers(fh, path, fileSize);
    checkOrder(members, path);
    const byName = new Map(members.map((m) => [m.name, m]));
    const get = (n: string) => byName.get(n) as LayerMember;
    const lj = get('layer.json');
    const { json, canonical, manifest } = parseManifestMember(
      await readAt(fh, lj.offset, lj.size, path, 'layer.json'),
      path,
    );
    const created = Math.floor(Date.parse(manifest.created) / 1000);
    for (const m of members) {
      if (m.mtime !== created) {
        throw new LayerError(
          'E_LAYER_TAR',
          `${path}: member ${m.name} has mtime ${m.mtime}, the manifest's created time is ${created}`,
          { path, details: { member: m.name } },
        );
      }
    }
    const payload = get('payload.erofs');
    const verity = get('payload.verity');
    if (payload.offset % BLOCK_SIZE !== 0) {
      throw new LayerError(
        'E_LAYER_ALIGNMENT',
        `${path}: payload.erofs data starts at byte ${payload.offset}, not a multiple of 4096`,
        { path },
      );
    }
    if (payload.size !== manifest.payload.size) {
      throw new LayerError(
        'E_LAYER_MEMBER_SIZE',
        `${path}: payload.erofs is ${payload.size} bytes, the manifest says ${manifest.payload.size}`,
        { path, details: { member: 'payload.erofs' } },
      );
    }
    const hashSize = verityGeometry(manifest.payload.verity.dataBlocks).hashSize;
    if (manifest.payload.verity.hashSize !== hashSize || verity.size !== hashSize) {
      throw new LayerError(
        'E_LAYER_MEMBER_SIZE',
        `${path}: payload.verity is ${verity.size} bytes, the manifest says ${manifest.payload.verity.hashSize}, the geometry needs ${hashSize}`,
        { path, details: { member: 'payload.verity' } },
      );
    }
    const pol = byName.get('policy.cil');
    let policy: Uint8Array | undefined;
    if ((pol === undefined) !== (manifest.policy === undefined)) {
      throw new LayerError(
        pol === undefined ? 'E_LAYER_MEMBER_MISSING' : 'E_LAYER_MEMBER_EXTRA',
        `${path}: policy.cil is ${pol === undefined ? 'missing but the manifest binds one' : 'present but the manifest binds none'}`,
        { path, details: { member: 'policy.cil' } },
      );
    }
    if (pol !== undefined)
      policy = new Uint8Array(await readAt(fh, pol.offset, pol.size, path, 'policy.cil'));
    const signatures: Signature[] = [];
    for (const m of members.filter((x) => SIGNATURE_NAME.test(x.name))) {
      signatures.push(parseSignatureMember(await readAt(fh, m.offset, m.size, path, m.name), m.name, path));
    }
    return {
      path,
      manifest,
      manifestJson: json,
      manifestBytes: canonical,
      members,
      signatures,
      policy,
      payloadOffset: payload.offset,
      payloadSize: payload.size,
      verityOffset: verity.offset,
      veritySize: verity.size,
      end,
      fileSize,
    };
  } finally {
    await fh.close();
  }
}
