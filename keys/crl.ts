// X.509 CRLs (RFC 5280 §5): issuing/extending with @peculiar/x509 (loaded then, x509-lib.ts),
// parsing with asn1js (x509-asn1.ts), and checking a CRL's signature against its issuer
// synchronously with node:crypto.
import * as asn1js from 'asn1js';
import { createHash, verify as nodeVerify } from 'node:crypto';
import { errorMessage, readRegularFile } from '../common/index.ts';
import { certificatePem, certificatePublicKey, ownArrayBuffer, parseCertificateDer } from './certificate.ts';
import { assertStrictDer } from './der.ts';
import { KeysError } from './errors.ts';
import { webcryptoName } from './issue.ts';
import { decodePemBlocks, looksPem } from './pem.ts';
import { isRootRole } from './role-policy.ts';
import type { Certificate, SigningKey } from './types.ts';
import {
  children,
  decodeDer,
  encoded,
  expect,
  explicitInner,
  extensions,
  type Fail,
  integerHex,
  isContext,
  isTime,
  nameText,
  timeOf,
} from './x509-asn1.ts';
import { type X509Key, x509Lib } from './x509-lib.ts';

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
  /**
   * The issuer's certificate and its chain (issuer first) when the issuer is no trust anchor
   * (a peer issuer): the CERTIFICATE blocks after the CRL in its PEM file. checkCrls accepts such
   * a CRL only when this chain verifies to an anchor and its first certificate signed the CRL.
   */
  issuerChain?: Certificate[];
}

/**
 * Parses one CRL: strict PEM (one X509 CRL block, then the issuer's CERTIFICATE blocks when it is
 * no anchor) or strict DER; every failure is E_CRL_MALFORMED.
 */
export function parseCrl(input: string | Uint8Array, what = 'CRL'): Crl {
  if (input.length > MAX_CRL)
    throw new KeysError('E_TOO_LARGE', `${what} is ${input.length} bytes, at most ${MAX_CRL}`);
  const all = crlBlocks(input, what);
  if (all.crls.length !== 1) {
    throw new KeysError(
      'E_CRL_MALFORMED',
      `${what} holds ${all.crls.length} CRLs, expected one (use readCrls)`,
    );
  }
  return withIssuerChain(decodeCrl(all.crls[0] as Uint8Array, what), all.certs, what);
}

/** A file's CRL bodies, and the certificates after them (the issuer chain of a non-anchor issuer). */
function crlBlocks(input: string | Uint8Array, what: string): { crls: Uint8Array[]; certs: Uint8Array[] } {
  if (typeof input !== 'string' && !looksPem(input)) return { crls: [input], certs: [] };
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('latin1');
  const blocks = decodePemBlocks(text, ['X509 CRL', 'CERTIFICATE'], 'E_CRL_MALFORMED', what);
  const firstCert = blocks.findIndex((b) => b.label === 'CERTIFICATE');
  // The chain follows the CRLs it belongs to; a CRL after a certificate is a file put together wrong.
  if (firstCert >= 0 && blocks.slice(firstCert).some((b) => b.label !== 'CERTIFICATE'))
    throw new KeysError(
      'E_CRL_MALFORMED',
      `${what}: a CRL block follows a CERTIFICATE block (the issuer's certificates go last)`,
    );
  return {
    crls: blocks.filter((b) => b.label === 'X509 CRL').map((b) => b.der),
    certs: blocks.filter((b) => b.label === 'CERTIFICATE').map((b) => b.der),
  };
}

function withIssuerChain(crl: Crl, certs: readonly Uint8Array[], what: string): Crl {
  if (certs.length === 0) return crl;
  const chain = certs.map((d, i) => {
    try {
      return parseCertificateDer(d);
    } catch (e) {
      throw new KeysError('E_CRL_MALFORMED', `${what}: issuer certificate ${i + 1}: ${errorMessage(e)}`, {
        cause: e,
      });
    }
  });
  return { ...crl, issuerChain: chain };
}

function decodeCrl(der: Uint8Array, what: string): Crl {
  if (der.length > MAX_CRL)
    throw new KeysError('E_TOO_LARGE', `${what} is ${der.length} bytes, at most ${MAX_CRL}`);
  assertStrictDer(der, 'E_CRL_MALFORMED', what);
  const fail: Fail = (m) => {
    throw new KeysError('E_CRL_MALFORMED', `${what}: ${m}`);
  };
  try {
    // asn1js decodes every value eagerly and throws its own errors (a BMPString of odd length
    // is a RangeError): the whole decode stays inside this mapping.
    const top = children(decodeDer(der, 'CRL', fail), 'CRL', fail);
    const [tbs, alg, sig] = top;
    if (
      top.length !== 3 ||
      !(tbs instanceof asn1js.Sequence) ||
      !(alg instanceof asn1js.Sequence) ||
      !(sig instanceof asn1js.BitString)
    )
      fail('not a CertificateList (tbsCertList, signatureAlgorithm, signature)');
    // TBSCertList, RFC 5280 §5.1: version?, signature, issuer, thisUpdate, nextUpdate?,
    // revokedCertificates?, crlExtensions [0]?.
    const f = children(tbs, 'tbsCertList', fail);
    let i = f[0] instanceof asn1js.Integer ? 1 : 0;
    // The outer signatureAlgorithm is outside the signed bytes; RFC 5280 §5.1.1.2 requires it to
    // be the tbsCertList's own, and the signature BIT STRING has no unused bits. Checked here
    // because the signature check uses the issuer's key and would not notice a changed outer field.
    const inner = expect(f[i++], asn1js.Sequence, 'tbsCertList signature algorithm', fail);
    if (!Buffer.from(encoded(inner)).equals(encoded(alg as asn1js.Sequence)))
      fail('signatureAlgorithm differs from the one inside the signed tbsCertList');
    if ((sig as asn1js.BitString).valueBlock.unusedBits !== 0) fail('signature BIT STRING has unused bits');
    const issuer = nameText(f[i++], 'issuer', fail);
    const thisUpdate = timeOf(f[i++], 'thisUpdate', fail);
    const nextUpdate = isTime(f[i]) ? timeOf(f[i++], 'nextUpdate', fail) : undefined;
    const serials: string[] = [];
    if (f[i] instanceof asn1js.Sequence) {
      for (const entry of children(f[i++], 'revokedCertificates', fail)) {
        const e = children(entry, 'revoked certificate', fail);
        if (e.length < 2 || e.length > 3) fail('revoked certificate is not (serial, date, extensions?)');
        serials.push(integerHex(e[0], 'revoked serial number', fail));
        timeOf(e[1], 'revocationDate', fail);
        if (e[2] !== undefined) extensions(e[2], 'revoked certificate', fail);
      }
    }
    if (isContext(f[i], 0))
      extensions(explicitInner(f[i++] as asn1js.AsnType, 'crlExtensions', fail), 'CRL', fail);
    if (i !== f.length) fail(`tbsCertList has ${f.length - i} unexpected fields`);
    return {
      der: new Uint8Array(der),
      issuer,
      thisUpdate,
      nextUpdate,
      serials,
      tbs: encoded(tbs as asn1js.Sequence),
      signature: new Uint8Array((sig as asn1js.BitString).valueBlock.valueHexView),
    };
  } catch (e) {
    if (e instanceof KeysError) throw e;
    throw new KeysError('E_CRL_MALFORMED', `Cannot decode ${what}: ${errorMessage(e)}`, { cause: e });
  }
}

/**
 * Every CRL in a file (PEM blocks or one DER CRL). A file that cannot be read, holds a damaged
 * block or yields no CRL is an error, never an empty list: a dropped CRL is a revocation lost.
 */
export async function readCrls(path: string): Promise<Crl[]> {
  const data = await readRegularFile(path, {
    what: 'CRL',
    readCode: 'E_CRL_READ',
    maxBytes: MAX_CRL * 4,
    tooLargeCode: 'E_TOO_LARGE',
    error: (code, message, options) => new KeysError(code, message, options),
  });
  try {
    const { crls, certs } = crlBlocks(new Uint8Array(data), path);
    return crls.map((d, i) =>
      withIssuerChain(decodeCrl(d, crls.length === 1 ? path : `${path} (CRL ${i + 1})`), certs, path),
    );
  } catch (e) {
    if (e instanceof KeysError) throw new KeysError(e.code, e.message, { path, cause: e });
    throw e;
  }
}

/** True when `crl` was signed by `issuer`'s key (ML-DSA in X.509 uses the empty context). */
export function crlSignedBy(crl: Crl, issuer: Certificate): boolean {
  try {
    return nodeVerify(null, crl.tbs, certificatePublicKey(issuer), crl.signature);
  } catch {
    return false;
  }
}

/**
 * A new CRL by `issuer` listing `serials` plus those of `previous`; valid for `days`. A CRL of a
 * non-root issuer (a peer issuer) carries `issuerChain` (the issuer first; default: the issuer
 * alone), so whoever holds only the root can check it.
 */
export async function issueCrl(o: {
  issuerKey: SigningKey;
  issuerCert: Certificate;
  issuerChain?: readonly Certificate[] | undefined;
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
  const x509 = await x509Lib();
  const issuer = new x509.X509Certificate(ownArrayBuffer(o.issuerCert.der)).subject;
  const crl = await x509.X509CrlGenerator.create({
    issuer,
    thisUpdate: now,
    nextUpdate: new Date(now.getTime() + (o.days ?? 30) * 86_400_000),
    signingAlgorithm: { name },
    signingKey,
    entries: [...all].sort().map((serialNumber) => ({ serialNumber, revocationDate: now })),
  });
  const out = parseCrl(new Uint8Array(crl.rawData));
  if (isRootRole(o.issuerCert.role)) return out;
  const chain = o.issuerChain ?? [o.issuerCert];
  if (chain[0]?.fingerprint !== o.issuerCert.fingerprint)
    throw new KeysError(
      'E_ISSUER_MISMATCH',
      `The issuer chain of a CRL must start with its issuer ${o.issuerCert.subject}`,
    );
  return { ...out, issuerChain: [...chain] };
}

/** The CRL as PEM, followed by its issuer chain's certificates when it carries one. */
export function crlPem(crl: Crl): string {
  const b64 = Buffer.from(crl.der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  const chain = (crl.issuerChain ?? []).map((c) => certificatePem(c.der)).join('');
  return `-----BEGIN X509 CRL-----\n${b64}\n-----END X509 CRL-----\n${chain}`;
}

export function crlFingerprint(crl: Crl): string {
  return createHash('sha256').update(crl.der).digest('hex');
}
