// Certificate path validation for the MilkyWay profile (RFC 5280 §6, simplified to the
// profile): trust anchors, validity at a time, CA flag, pathLen, role rules, depth, CRLs.
import { MAX_CHAIN, nodeCertificate } from './certificate.ts';
import { type Crl, crlSignedBy } from './crl.ts';
import { KeysError } from './errors.ts';
import { createHash } from 'node:crypto';
import { assertMayIssue, INTERMEDIATE_ROLES } from './role-policy.ts';
import type { Certificate, Role } from './types.ts';

/** Longest accepted path from leaf to anchor, counting both. */
export const MAX_DEPTH = 4;

export interface VerifyChainOptions {
  anchors: readonly Certificate[];
  crls?: readonly Crl[] | undefined;
  at?: Date | undefined;
  /** When given, the leaf's role must be one of these. */
  roles?: readonly Role[] | undefined;
}

function checkTime(c: Certificate, at: Date): void {
  if (at.getTime() < c.notBefore.getTime()) {
    throw new KeysError(
      'E_CERT_NOT_YET_VALID',
      `Certificate ${c.subject} is not valid before ${c.notBefore.toISOString()} (checked at ${at.toISOString()})`,
      { details: { fingerprint: c.fingerprint } },
    );
  }
  if (at.getTime() > c.notAfter.getTime()) {
    throw new KeysError(
      'E_CERT_EXPIRED',
      `Certificate ${c.subject} expired at ${c.notAfter.toISOString()} (checked at ${at.toISOString()})`,
      { details: { fingerprint: c.fingerprint } },
    );
  }
}

const subjectDn = (c: Certificate): string => nodeCertificate(c).subject;
const issuerDn = (c: Certificate): string => nodeCertificate(c).issuer;

/**
 * Certificate signatures that verified, as `child fingerprint>issuer fingerprint`. A fingerprint
 * is the SHA-256 of every DER byte, so an entry stands for one to-be-signed body, one signature
 * and one issuer key: a verdict that cannot change. A peer sees the same operator certificate on
 * every command and an operator the same peers on every result, and the ML-DSA check is most of
 * what a chain costs; time, CA flags, roles and CRLs are still checked on every call. Only
 * successes are kept (a failure is not a hot path). Bounded: the oldest entry goes first.
 */
const verifiedSignatures = new Set<string>();
const VERIFIED_MAX = 4096;

function signedBy(c: Certificate, issuer: Certificate): boolean {
  const key = `${c.fingerprint}>${issuer.fingerprint}`;
  if (verifiedSignatures.has(key)) return true;
  let ok: boolean;
  try {
    ok = nodeCertificate(c).verify(nodeCertificate(issuer).publicKey);
  } catch {
    ok = false;
  }
  if (ok) {
    if (verifiedSignatures.size >= VERIFIED_MAX)
      verifiedSignatures.delete(verifiedSignatures.values().next().value as string);
    verifiedSignatures.add(key);
  }
  return ok;
}

/** Node prints DNs one RDN per line, @peculiar/x509 comma-separated: compare RDN sets. */
function sameDn(a: string, b: string): boolean {
  const norm = (s: string) =>
    s
      .split(/\n|,\s*/)
      .map((x) => x.trim())
      .filter((x) => x !== '')
      .sort()
      .join(',');
  return norm(a) === norm(b);
}

/** CRL → fingerprint of the certificate whose key verified it (the CRL object is immutable in use). */
const crlVerifiedBy = new WeakMap<Crl, string>();
/** Fingerprints of self-issued anchors whose self-signature verified (a fingerprint names every byte). */
const anchorsChecked = new Set<string>();

/**
 * Every CRL given must be issued and signed by a known anchor, or by a peer issuer whose chain
 * the CRL carries (crl.issuerChain, verified here to an anchor). A CRL that names no such issuer,
 * or that the issuer of its name did not sign, is an error rather than skipped: a damaged issuer
 * name or signature would otherwise turn a revocation list into no list at all.
 */
export function checkCrls(crls: readonly Crl[], anchors: readonly Certificate[], at?: Date): void {
  for (const crl of crls) {
    const named = anchors.filter((a) => a.isCA && sameDn(crl.issuer, subjectDn(a)));
    const done = crlVerifiedBy.get(crl);
    if (named.length === 0 && crl.issuerChain !== undefined) {
      checkDelegatedCrl(crl, crl.issuerChain, anchors, at);
      continue;
    }
    if (done !== undefined && named.some((a) => a.fingerprint === done)) continue;
    if (named.length === 0) {
      throw new KeysError(
        'E_CRL_ISSUER_UNKNOWN',
        `CRL issued by ${JSON.stringify(crl.issuer)} names no trust anchor and carries no issuer certificate (damaged, or for another root)`,
        { details: { issuer: crl.issuer } },
      );
    }
    const by = named.find((a) => crlSignedBy(crl, a));
    if (by === undefined) {
      throw new KeysError(
        'E_CRL_SIGNATURE',
        `CRL naming issuer ${named[0]?.subject} is not signed by that issuer`,
        { details: { issuer: crl.issuer } },
      );
    }
    crlVerifiedBy.set(crl, by.fingerprint);
  }
}

/**
 * A CRL of a peer issuer (no anchor): the certificates it carries must be that issuer's
 * chain to an anchor (the first one named by the CRL, role peer-issuer, every link checked as
 * any chain is), and the first one's key must have signed the CRL. The chain is checked again
 * on every call (its time window moves; its signatures are cached); the CRL's signature once.
 */
function checkDelegatedCrl(
  crl: Crl,
  chain: readonly Certificate[],
  anchors: readonly Certificate[],
  at: Date | undefined,
): void {
  const issuer = chain[0];
  if (issuer === undefined || !sameDn(crl.issuer, subjectDn(issuer))) {
    throw new KeysError(
      'E_CRL_ISSUER_UNKNOWN',
      `CRL issued by ${JSON.stringify(crl.issuer)} carries the certificate of ${issuer?.subject ?? 'nobody'}, not of its issuer`,
      { details: { issuer: crl.issuer } },
    );
  }
  try {
    verifyChain(chain, { anchors, roles: INTERMEDIATE_ROLES, at });
  } catch (e) {
    if (!(e instanceof KeysError)) throw e;
    throw new KeysError(e.code, `CRL issuer ${issuer.subject}: ${e.message}`, {
      cause: e,
      details: { issuer: crl.issuer },
    });
  }
  if (crlVerifiedBy.get(crl) === issuer.fingerprint) return;
  if (!crlSignedBy(crl, issuer)) {
    throw new KeysError(
      'E_CRL_SIGNATURE',
      `CRL naming issuer ${issuer.subject} is not signed by that issuer`,
      {
        details: { issuer: crl.issuer },
      },
    );
  }
  crlVerifiedBy.set(crl, issuer.fingerprint);
}

/** `crl>issuer` fingerprint pairs whose signature verified: a CRL applied to a re-issued issuer of the same key. */
const crlSignedByIssuer = new Set<string>();

function checkRevocation(c: Certificate, issuer: Certificate, crls: readonly Crl[]): void {
  const dn = subjectDn(issuer);
  for (const crl of crls) {
    if (!sameDn(crl.issuer, dn) || !crlAppliesTo(crl, issuer)) continue;
    if (crl.serials.includes(c.serial)) {
      throw new KeysError(
        'E_CERT_REVOKED',
        `Certificate ${c.subject} (serial ${c.serial}) is revoked by ${issuer.subject}`,
        {
          details: { fingerprint: c.fingerprint, serial: c.serial },
        },
      );
    }
  }
}

/**
 * Whether `crl` (already checked by checkCrls) speaks for `issuer` on this path: it was verified
 * with this very certificate, or with another certificate of the same name whose key is this
 * one's (a peer issuer re-issued, the CRL carrying the older copy). A CRL of the same name under
 * another key (an anchor's key rollover) does not.
 */
function crlAppliesTo(crl: Crl, issuer: Certificate): boolean {
  const by = crlVerifiedBy.get(crl);
  if (by === undefined) return false;
  if (by === issuer.fingerprint) return true;
  const key = `${createHash('sha256').update(crl.der).digest('hex')}>${issuer.fingerprint}`;
  if (crlSignedByIssuer.has(key)) return true;
  if (!crlSignedBy(crl, issuer)) return false;
  if (crlSignedByIssuer.size >= VERIFIED_MAX)
    crlSignedByIssuer.delete(crlSignedByIssuer.values().next().value as string);
  crlSignedByIssuer.add(key);
  return true;
}

/**
 * An anchor is trusted by configuration, but a self-issued one still carries a signature over
 * its own bytes: checking it means a changed byte anywhere in an anchor file is noticed rather
 * than trusted under a new fingerprint.
 */
function checkAnchor(a: Certificate): void {
  if (anchorsChecked.has(a.fingerprint)) return;
  // A root role is self-issued by definition: a root whose issuer name differs is damaged, not
  // a pinned certificate to take on trust. Other anchors (a pinned leaf) carry no self-signature.
  const root = a.role === 'vendor-root' || a.role === 'user-root';
  if (!root && subjectDn(a) !== issuerDn(a)) return;
  if (root && subjectDn(a) !== issuerDn(a)) {
    throw new KeysError(
      'E_CERT_SIGNATURE',
      `Trust anchor ${a.subject} has role ${a.role} but is not self-issued (issuer ${issuerDn(a)}): the file is damaged`,
      { details: { fingerprint: a.fingerprint } },
    );
  }
  if (!signedBy(a, a)) {
    throw new KeysError(
      'E_CERT_SIGNATURE',
      `Trust anchor ${a.subject}: its self-signature does not verify (the file is damaged)`,
      { details: { fingerprint: a.fingerprint } },
    );
  }
  anchorsChecked.add(a.fingerprint);
}

/** Verifies `chain` (leaf first) up to one of `anchors`; returns the leaf or throws KeysError. */
export function verifyChain(chain: readonly Certificate[], options: VerifyChainOptions): Certificate {
  const leaf = chain[0];
  if (leaf === undefined) throw new KeysError('E_CHAIN_EMPTY', 'Certificate chain is empty');
  if (chain.length > MAX_CHAIN) {
    throw new KeysError(
      'E_TOO_LARGE',
      `Certificate chain has ${chain.length} certificates, at most ${MAX_CHAIN}`,
    );
  }
  if (options.anchors.length === 0) throw new KeysError('E_CERT_UNTRUSTED', 'No trust anchors given');
  const at = options.at ?? new Date();
  const crls = options.crls ?? [];
  if (options.roles !== undefined && !options.roles.includes(leaf.role)) {
    throw new KeysError(
      'E_CERT_ROLE',
      `Certificate ${leaf.subject} has role ${leaf.role}, expected ${options.roles.join(' or ')}`,
      {
        details: { role: leaf.role, fingerprint: leaf.fingerprint },
      },
    );
  }
  // Structure first (time, CA flag, signature, pathLen), then policy (roles) and revocation,
  // so each failure reports the most basic thing that is wrong.
  const links: Array<{ cert: Certificate; issuer: Certificate }> = [];
  const path: Certificate[] = [leaf];
  let cur = leaf;
  let casBelow = 0;
  for (let depth = 1; ; depth++) {
    checkTime(cur, at);
    if (options.anchors.some((a) => a.fingerprint === cur.fingerprint)) {
      checkAnchor(cur);
      break;
    }
    if (depth >= MAX_DEPTH) {
      throw new KeysError('E_CHAIN_TOO_DEEP', `Certificate path is longer than ${MAX_DEPTH} certificates`);
    }
    const dn = issuerDn(cur);
    // Among anchors with the issuer's name prefer one whose key verifies (key rollover);
    // otherwise take the named one so a bad signature reports E_CERT_SIGNATURE.
    const named = options.anchors.filter((a) => subjectDn(a) === dn);
    const anchor = named.find((a) => signedBy(cur, a)) ?? named[0];
    const issuer = anchor ?? chain[depth];
    if (issuer === undefined || (anchor === undefined && subjectDn(issuer) !== dn)) {
      throw new KeysError(
        'E_CERT_UNTRUSTED',
        `Certificate ${cur.subject} is not issued by any trust anchor`,
        {
          details: { fingerprint: cur.fingerprint, issuer: dn },
        },
      );
    }
    if (!issuer.isCA) {
      throw new KeysError('E_CERT_NOT_CA', `Issuer ${issuer.subject} of ${cur.subject} is not a CA`);
    }
    if (!signedBy(cur, issuer)) {
      throw new KeysError(
        'E_CERT_SIGNATURE',
        `Signature of certificate ${cur.subject} does not verify with ${issuer.subject}'s key`,
      );
    }
    if (issuer.pathLen !== undefined && casBelow > issuer.pathLen) {
      throw new KeysError(
        'E_CERT_PATHLEN',
        `Issuer ${issuer.subject} allows ${issuer.pathLen} CA certificates below it, path has ${casBelow}`,
      );
    }
    links.push({ cert: cur, issuer });
    path.push(issuer);
    if (anchor !== undefined) {
      checkTime(anchor, at);
      checkAnchor(anchor);
      break;
    }
    cur = issuer;
    casBelow++;
  }
  checkChainIsPath(chain, path);
  for (const { cert, issuer } of links) assertMayIssue(issuer, cert.role);
  checkCrls(crls, options.anchors, at);
  for (const { cert, issuer } of links) checkRevocation(cert, issuer, crls);
  return leaf;
}

/**
 * Every certificate a chain carries must be the one the path uses: an issuer copy that differs
 * from the anchor it stands for (a changed byte, another version) or a certificate the path
 * never reaches is refused, so no byte of a chain is carried along unchecked.
 */
function checkChainIsPath(chain: readonly Certificate[], path: readonly Certificate[]): void {
  for (let i = 1; i < chain.length; i++) {
    const c = chain[i] as Certificate;
    const used = path[i];
    if (used === undefined) {
      throw new KeysError(
        'E_CHAIN_MISMATCH',
        `Chain certificate ${i + 1} (${c.subject}) is not on the path to the trust anchor, which ends at ${path[path.length - 1]?.subject}`,
        { details: { index: i, fingerprint: c.fingerprint } },
      );
    }
    if (used.fingerprint !== c.fingerprint) {
      throw new KeysError(
        'E_CHAIN_MISMATCH',
        `Chain certificate ${i + 1} (${c.subject}) differs from the certificate the path uses (${used.subject}, ${used.fingerprint.slice(0, 16)}…)`,
        { details: { index: i, fingerprint: c.fingerprint, expected: used.fingerprint } },
      );
    }
  }
}
