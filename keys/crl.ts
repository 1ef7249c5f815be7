// X.509 CRLs (RFC 5280 §5): issuing/extending with @peculiar/x509, parsing, and checking a
// CRL's signature against its issuer synchronously with node:crypto.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createHash, verify as nodeVerify, webcrypto } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { errorMessage } from '../common/error.ts';
import { certificatePublicKey, ownArrayBuffer } from './certificate.ts';
import { KeysError } from './errors.ts';
import { webcryptoName } from './issue.ts';
import type { Certificate, SigningKey } from './types.ts';

/** The CryptoKey type as @peculiar/x509 declares it (no DOM lib here). */
type X509Key = x509.X509CrlCreateParams['signingKey'];

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export const MAX_CRL = 4 * 1024 * 1024;

export interface Crl {
  der: Uint8Array;
  /** Issuer distinguished name as text. */
  issuer: string;
  thisUpdate: Date;
  nextUpdate: Date | undefined;
  /** Revoked serial numbers, lowercase hex. */
  serials: string[];
  /** The signed part and signature, for verification against the issuer. */
  tbs: Uint8Array;
  signature: Uint8Array;
}

export function parseCrl(input: string | Uint8Array): Crl {
  if (input.length > MAX_CRL)
    throw new KeysError('E_TOO_LARGE', `CRL is ${input.length} bytes, at most ${MAX_CRL}`);
  let c: x509.X509Crl;
  try {
    const text = typeof input === 'string' ? input : new TextDecoder().decode(input.subarray(0, 32));
    if (text.includes('-----BEGIN')) {
      c = new x509.X509Crl(typeof input === 'string' ? input : new TextDecoder().decode(input));
    } else {
      c = new x509.X509Crl(ownArrayBuffer(input as Uint8Array));
    }
  } catch (e) {
    throw new KeysError('E_CRL_MALFORMED', `Cannot decode CRL: ${errorMessage(e)}`, { cause: e });
  }
  const tbs = (c as unknown as { tbs: ArrayBuffer }).tbs;
  return {
    der: new Uint8Array(c.rawData),
    issuer: c.issuer,
    thisUpdate: c.thisUpdate,
    nextUpdate: c.nextUpdate,
    serials: c.entries.map((e) => e.serialNumber.toLowerCase()),
    tbs: new Uint8Array(tbs),
    signature: new Uint8Array(c.signature),
  };
}

export async function readCrls(path: string): Promise<Crl[]> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (e) {
    throw new KeysError('E_CRL_READ', `Cannot read CRL ${path}: ${errorMessage(e)}`, { path, cause: e });
  }
  const text = data.toString('latin1');
  if (text.includes('-----BEGIN X509 CRL-----')) {
    const blocks = text.match(/-----BEGIN X509 CRL-----[\s\S]*?-----END X509 CRL-----/g) ?? [];
    return blocks.map((b) => parseCrl(b));
  }
  return [parseCrl(new Uint8Array(data))];
}

/** True when `crl` was signed by `issuer`'s key (ML-DSA in X.509 uses the empty context). */
export function crlSignedBy(crl: Crl, issuer: Certificate): boolean {
  try {
    return nodeVerify(null, crl.tbs, certificatePublicKey(issuer), crl.signature);
  } catch {
    return false;
  }
}

/** A new CRL by `issuer` listing `serials` plus those of `previous`; valid for `days`. */
export async function issueCrl(o: {
  issuerKey: SigningKey;
  issuerCert: Certificate;
  serials: string[];
  previous?: Crl | undefined;
  days?: number | undefined;
  now?: Date | undefined;
}): Promise<Crl> {
  if (!o.issuerCert.isCA) throw new KeysError('E_CERT_NOT_CA', `Issuer ${o.issuerCert.subject} is not a CA`);
  const now = o.now ?? new Date();
  const all = new Set([...(o.previous?.serials ?? []), ...o.serials.map((s) => s.toLowerCase())]);
  const name = webcryptoName(o.issuerKey.algorithm);
  const signingKey = (await o.issuerKey.privateKey.toCryptoKey({ name }, false, [
    'sign',
  ])) as unknown as X509Key;
  const issuer = new x509.X509Certificate(ownArrayBuffer(o.issuerCert.der)).subject;
  const crl = await x509.X509CrlGenerator.create({
    issuer,
    thisUpdate: now,
    nextUpdate: new Date(now.getTime() + (o.days ?? 30) * 86_400_000),
    signingAlgorithm: { name },
    signingKey,
    entries: [...all].sort().map((serialNumber) => ({ serialNumber, revocationDate: now })),
  });
  return parseCrl(new Uint8Array(crl.rawData));
}

export function crlPem(crl: Crl): string {
  const b64 = Buffer.from(crl.der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN X509 CRL-----\n${b64}\n-----END X509 CRL-----\n`;
}

export function crlFingerprint(crl: Crl): string {
  return createHash('sha256').update(crl.der).digest('hex');
}
