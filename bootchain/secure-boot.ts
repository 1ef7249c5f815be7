// UEFI Secure Boot signing (Authenticode, RSA/SHA-256) with Debian's sbsigntool, and the PE
// certificate table (PE/COFF §4.7 "The Attribute Certificate Table"). sbsign stamps the current
// time into the PKCS#7 signed attributes (signingTime), which is the only thing that makes its
// output vary; run under libfaketime with the clock frozen at SOURCE_DATE_EPOCH it signs the
// same bytes to the same bytes (RSA PKCS#1 v1.5 is deterministic), so a disk built twice is
// still identical. The frozen time is SOURCE_DATE_EPOCH moved into the signer certificate's
// validity: the locked-down kernel's kexec_file_load refuses a signature whose signingTime lies
// outside its certificate's window (pkcs7_verify_one: "Message signed outside of X.509 validity
// window", EKEYREJECTED), and a key made today with an older SOURCE_DATE_EPOCH would otherwise
// sign every kernel "before" its certificate existed. Signing stays a step of its own: the unsigned image is built first, and
// `signedMatchesUnsigned` proves a signed image is exactly that image plus a certificate table.
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool, run } from '../common/index.ts';
import { BootchainError } from './bootchain-error.ts';

/** A Secure Boot signing identity: PEM private key (unencrypted RSA) and X.509 certificate. */
export interface SbKey {
  key: string;
  cert: string;
}

/** `YYYY-MM-DD HH:MM:SS` in UTC, libfaketime's frozen absolute time. */
function fakeTime(epoch: number): string {
  return new Date(epoch * 1000).toISOString().replace('T', ' ').slice(0, 19);
}

/** `epoch` (seconds) moved into the validity window of the certificate in `certPem`. */
export function signingTime(certPem: string, epoch: number, path: string): number {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (e) {
    throw new BootchainError('E_SB_SIGN', `${path} is not a PEM X.509 certificate`, { path, cause: e });
  }
  const from = Math.floor(Date.parse(cert.validFrom) / 1000);
  const to = Math.floor(Date.parse(cert.validTo) / 1000);
  return Math.min(Math.max(epoch, from), to);
}

/**
 * Signs PE `input` into `output` with sbsign, the clock frozen at `epoch` moved into the
 * signer's validity (signingTime above); checks it with sbverify.
 */
export async function sbSign(o: {
  input: string;
  output: string;
  signer: SbKey;
  epoch: number;
}): Promise<void> {
  const faketime = await requireTool('faketime');
  const sbsign = await requireTool('sbsign');
  const pem = await readFile(o.signer.cert, 'utf8').catch((e: unknown) => {
    throw new BootchainError('E_SB_SIGN', `Cannot read the signer certificate ${o.signer.cert}`, {
      path: o.signer.cert,
      cause: e,
    });
  });
  const at = signingTime(pem, o.epoch, o.signer.cert);
  const r = await run(
    faketime,
    [
      // -f: the time string goes to libfaketime as is, an absolute time that stands still; without
      // it the wrapper makes it "@time", a start that keeps ticking, and signingTime then depends on
      // how long the build took to get here (two builds of the same inputs differed).
      '-f',
      fakeTime(at),
      sbsign,
      '--key',
      o.signer.key,
      '--cert',
      o.signer.cert,
      '--output',
      o.output,
      o.input,
    ],
    { timeout: 120_000, reject: false, env: { TZ: 'UTC' } },
  );
  if (r.exitCode !== 0)
    throw new BootchainError(
      'E_SB_SIGN',
      `sbsign ${o.input} failed: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`,
      {
        path: o.input,
      },
    );
  await sbVerify(o.output, o.signer.cert);
}

/** Throws E_SB_NOT_SIGNED unless sbverify accepts `file`'s signature under `cert`. */
export async function sbVerify(file: string, cert: string): Promise<void> {
  const sbverify = await requireTool('sbverify');
  const r = await run(sbverify, ['--cert', cert, file], { timeout: 120_000, reject: false });
  if (r.exitCode !== 0)
    throw new BootchainError(
      'E_SB_NOT_SIGNED',
      `${file} has no Authenticode signature that verifies under ${cert}: ${`${r.stdout} ${r.stderr}`.trim().split('\n').slice(-1)[0]}`,
      { path: file },
    );
}

/** Signers sbverify lists for `file` (subject lines), empty when unsigned. */
export async function sbSigners(file: string): Promise<string[]> {
  const sbverify = await requireTool('sbverify');
  const r = await run(sbverify, ['--list', file], { timeout: 60_000, reject: false });
  return [...r.stdout.matchAll(/subject:\s*(.+)/g)].map((m) => (m[1] ?? '').trim());
}

interface PeDirs {
  checksumAt: number;
  securityAt: number;
}

function peDirs(b: Uint8Array): PeDirs {
  const bad = (why: string): never => {
    throw new BootchainError('E_SB_PE', `Not a PE32+ image: ${why}`);
  };
  if (b.length < 0x40 || b[0] !== 0x4d || b[1] !== 0x5a) bad('no MZ header');
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const pe = v.getUint32(0x3c, true);
  if (pe + 24 + 152 > b.length || v.getUint32(pe, true) !== 0x4550) bad('no PE signature');
  const opt = pe + 24;
  if (v.getUint16(opt, true) !== 0x20b) bad('not PE32+');
  if (v.getUint32(opt + 108, true) < 5) bad('no certificate table directory');
  return { checksumAt: opt + 64, securityAt: opt + 144 };
}

/** The PE checksum (ImageHlp's CheckSumMappedFile), computed with the checksum field as zero. */
export function peChecksum(b: Uint8Array, checksumAt: number): number {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let sum = 0;
  const even = b.length & ~1;
  for (let i = 0; i < even; i += 2) {
    if (i === checksumAt || i === checksumAt + 2) continue;
    sum += v.getUint16(i, true);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  if (b.length % 2 === 1) {
    sum += b[b.length - 1] ?? 0;
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  sum = (sum & 0xffff) + (sum >>> 16);
  return (sum + b.length) >>> 0;
}

/** Where the certificate table is (file offset, size); size 0 when the image is unsigned. */
export function certificateTable(b: Uint8Array): { offset: number; size: number } {
  const d = peDirs(b);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { offset: v.getUint32(d.securityAt, true), size: v.getUint32(d.securityAt + 4, true) };
}

/**
 * `b` as it was before signing: the certificate table (which must end the file) cut off, its
 * directory entry zeroed, the checksum recomputed. An unsigned image is returned normalised
 * the same way (padded to 8 bytes, as sbsign pads before appending the table).
 */
export function unsignedImage(b: Uint8Array): Uint8Array {
  const d = peDirs(b);
  const t = certificateTable(b);
  let out: Uint8Array;
  if (t.size === 0) {
    out = new Uint8Array(Math.ceil(b.length / 8) * 8);
    out.set(b);
  } else {
    if (t.offset + t.size !== b.length || t.offset % 8 !== 0)
      throw new BootchainError(
        'E_SB_PE',
        `The certificate table (${t.offset}+${t.size}) is not the 8-aligned end of the file (${b.length})`,
      );
    out = b.slice(0, t.offset);
  }
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  v.setUint32(d.securityAt, 0, true);
  v.setUint32(d.securityAt + 4, 0, true);
  v.setUint32(d.checksumAt, peChecksum(out, d.checksumAt), true);
  return out;
}

/** True when `signed` is exactly `unsigned` plus a certificate table (and the header fields signing sets). */
export function signedMatchesUnsigned(signed: Uint8Array, unsigned: Uint8Array): boolean {
  if (certificateTable(signed).size === 0) return false;
  return Buffer.from(unsignedImage(signed)).equals(Buffer.from(unsignedImage(unsigned)));
}

/** Removes a PE's signature (sbattach --remove), for kernels that come signed by someone else. */
export async function stripSignature(bytes: Uint8Array): Promise<Uint8Array> {
  if (certificateTable(bytes).size === 0) return bytes;
  const sbattach = await requireTool('sbattach');
  const dir = await mkdtemp(join(tmpdir(), 'mway-sb-'));
  try {
    const f = join(dir, 'image.efi');
    await writeFile(f, bytes);
    await run(sbattach, ['--remove', f], { timeout: 60_000 });
    return new Uint8Array(await readFile(f));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
