// Issuing certificates of the MilkyWay profile with @peculiar/x509 over Node's WebCrypto
// (RFC 5280 X.509 v3, ML-DSA per RFC 9881), and creating whole identities (key + cert files).
import type * as X509Types from '@peculiar/x509';
import { type KeyObject, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { errorMessage, makeOutputDir } from '../common/index.ts';
import { assertAlgorithm, generateKemKey, generateSigningKey, rawPublicKey } from './algorithms.ts';
import { certificatePem, ownArrayBuffer, parseCertificateDer } from './certificate.ts';
import { KeysError, keysError } from './errors.ts';
import { writeFileAtomic, writePrivateKey } from './key-file.ts';
import {
  EKU_CLIENT_AUTH,
  EKU_CODE_SIGNING,
  EKU_SERVER_AUTH,
  OID_KEM_KEY,
  OID_ROLE,
  OID_SCOPE,
  PEER_URI_PREFIX,
} from './oids.ts';
import { assertMayIssue, INTERMEDIATE_ROLES, isRootRole, tlsUsages } from './role-policy.ts';
import { canonicalJson } from './canonical.ts';
import {
  DEFAULT_ALGORITHM,
  ROLES,
  type Certificate,
  type Role,
  type SignatureAlgorithm,
  type SigningKey,
} from './types.ts';
import { encodeOctetsExt, encodeUtf8Ext } from './certificate.ts';
import { type X509Key, x509Lib } from './x509-lib.ts';

const WEBCRYPTO_NAMES: Partial<Record<SignatureAlgorithm, string>> = {
  'ml-dsa-44': 'ML-DSA-44',
  'ml-dsa-65': 'ML-DSA-65',
  'ml-dsa-87': 'ML-DSA-87',
};

/** WebCrypto name of an algorithm; SLH-DSA is refused (Node's WebCrypto has no SLH-DSA, so x509 cannot sign with it). */
export function webcryptoName(alg: SignatureAlgorithm): string {
  const n = WEBCRYPTO_NAMES[alg];
  if (n === undefined) {
    throw new KeysError(
      'E_ALG_UNSUPPORTED',
      `Cannot issue certificates with ${alg}: Node's WebCrypto (used by @peculiar/x509) has no SLH-DSA; use ml-dsa-44/65/87`,
    );
  }
  return n;
}

async function toCryptoKey(
  key: KeyObject,
  alg: SignatureAlgorithm,
  usage: 'sign' | 'verify',
): Promise<X509Key> {
  const name = webcryptoName(alg);
  return (await key.toCryptoKey({ name }, true, [usage])) as unknown as X509Key;
}

export interface IssueOptions {
  role: Role;
  name: string;
  /** Subject's key; its public half goes into the certificate. */
  subjectKey: SigningKey;
  /** Absent for self-signed roots. */
  issuerKey?: SigningKey | undefined;
  issuerCert?: Certificate | undefined;
  days?: number | undefined;
  groups?: string[] | undefined;
  actions?: string[] | undefined;
  peerId?: string | undefined;
  dnsNames?: string[] | undefined;
  kemPublicKey?: Uint8Array | undefined;
  notBefore?: Date | undefined;
  /** pathLen of a CA: the user root defaults to 1 (one peer issuer below it), others to 0. */
  pathLen?: number | undefined;
  /** Make a non-root a CA. The role policy accepts no such intermediates; tests use it to build bad paths. */
  ca?: boolean | undefined;
}

const DEFAULT_DAYS: Record<Role, number> = {
  'vendor-root': 3650,
  vendor: 730,
  'user-root': 3650,
  'peer-issuer': 730,
  user: 730,
  operator: 365,
  peer: 365,
  broker: 365,
};

export async function issueCertificate(o: IssueOptions): Promise<Certificate> {
  if (!(ROLES as readonly string[]).includes(o.role)) {
    throw new KeysError(
      'E_ROLE_UNKNOWN',
      `Unknown role ${JSON.stringify(o.role)} (known: ${ROLES.join(', ')})`,
    );
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(o.name)) {
    throw new KeysError(
      'E_NAME_INVALID',
      `Name ${JSON.stringify(o.name)} must be 1-64 of A-Z a-z 0-9 . _ - and start alphanumeric`,
    );
  }
  const root = isRootRole(o.role);
  if (root !== (o.issuerKey === undefined)) {
    throw new KeysError(
      'E_ISSUER_REQUIRED',
      root
        ? `A ${o.role} is self-signed; do not give an issuer`
        : `A ${o.role} certificate needs --issuer-key and --issuer-cert`,
    );
  }
  if (o.issuerKey !== undefined) {
    if (o.issuerCert === undefined)
      throw new KeysError('E_ISSUER_REQUIRED', 'An issuer key needs its issuer certificate');
    if (!o.issuerCert.isCA)
      throw new KeysError('E_CERT_NOT_CA', `Issuer ${o.issuerCert.subject} is not a CA`);
    assertMayIssue(o.issuerCert, o.role);
    const pub = Buffer.from(rawPublicKey(o.issuerKey.publicKey));
    if (!pub.equals(Buffer.from(o.issuerCert.publicKey))) {
      throw new KeysError(
        'E_ISSUER_MISMATCH',
        `Issuer key does not belong to issuer certificate ${o.issuerCert.subject}`,
      );
    }
  }
  if (o.role === 'operator' && (o.groups === undefined || o.actions === undefined)) {
    throw new KeysError('E_SCOPE_REQUIRED', 'An operator certificate needs --groups and --actions');
  }
  if (o.role === 'peer' && o.kemPublicKey === undefined) {
    throw new KeysError('E_KEM_KEY', 'A peer certificate needs an ML-KEM-768 public key');
  }
  const days = o.days ?? DEFAULT_DAYS[o.role];
  if (!Number.isInteger(days) || days < 1 || days > 36500) {
    throw new KeysError('E_DAYS_INVALID', `Validity of ${days} days is out of range 1..36500`);
  }
  const signer = o.issuerKey ?? o.subjectKey;
  const signAlg = webcryptoName(signer.algorithm);
  webcryptoName(o.subjectKey.algorithm);
  const notBefore = o.notBefore ?? new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
  const notAfter = new Date(notBefore.getTime() + days * 86_400_000);
  const ca = root || INTERMEDIATE_ROLES.includes(o.role) || o.ca === true;
  // The user root allows one CA below it (the peer issuer); the role table decides which.
  const pathLen = o.pathLen ?? (o.role === 'user-root' ? 1 : 0);
  const x509 = await x509Lib();
  const exts: X509Types.Extension[] = [
    new x509.BasicConstraintsExtension(ca, ca ? pathLen : undefined, true),
    new x509.KeyUsagesExtension(
      ca ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign : x509.KeyUsageFlags.digitalSignature,
      true,
    ),
    new x509.Extension(OID_ROLE, false, encodeUtf8Ext(o.role)),
  ];
  const tls = tlsUsages(o.role);
  if (!ca) {
    const ekus: string[] = [];
    if (tls.server) ekus.push(EKU_SERVER_AUTH);
    if (tls.client) ekus.push(EKU_CLIENT_AUTH);
    if (ekus.length === 0) ekus.push(EKU_CODE_SIGNING);
    exts.push(new x509.ExtendedKeyUsageExtension(ekus, false));
  }
  const names: X509Types.JsonGeneralName[] = (o.dnsNames ?? []).map((d) => ({ type: 'dns', value: d }));
  if (o.peerId !== undefined) names.push({ type: 'url', value: `${PEER_URI_PREFIX}${o.peerId}` });
  if (names.length > 0) exts.push(new x509.SubjectAlternativeNameExtension(names, false));
  if (o.role === 'operator') {
    const scope = new TextDecoder().decode(
      canonicalJson({ groups: o.groups ?? [], actions: o.actions ?? [] }),
    );
    exts.push(new x509.Extension(OID_SCOPE, false, encodeUtf8Ext(scope)));
  }
  if (o.kemPublicKey !== undefined)
    exts.push(new x509.Extension(OID_KEM_KEY, false, encodeOctetsExt(o.kemPublicKey)));
  const serialNumber = `4${randomBytes(15).toString('hex')}`;
  const subjectName = `CN=${o.name}, O=MilkyWay ${o.role}`;
  const issuerName =
    o.issuerCert === undefined
      ? subjectName
      : new x509.X509Certificate(ownArrayBuffer(o.issuerCert.der)).subject;
  try {
    const pub = await toCryptoKey(o.subjectKey.publicKey, o.subjectKey.algorithm, 'verify');
    const signingKey = await toCryptoKey(signer.privateKey, signer.algorithm, 'sign');
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber,
      subject: subjectName,
      issuer: issuerName,
      notBefore,
      notAfter,
      signingAlgorithm: { name: signAlg },
      publicKey: pub,
      signingKey,
      extensions: exts,
    });
    return parseCertificateDer(new Uint8Array(cert.rawData));
  } catch (e) {
    if (e instanceof KeysError) throw e;
    throw new KeysError('E_CERT_ISSUE', `Cannot issue certificate for ${o.name}: ${errorMessage(e)}`, {
      cause: e,
    });
  }
}

/** What a certificate says (IssueOptions), plus where the new key pair and certificate go. */
export interface NewIdentityOptions extends Omit<IssueOptions, 'subjectKey' | 'kemPublicKey' | 'ca'> {
  outDir: string;
  algorithm?: SignatureAlgorithm | undefined;
  passphrase?: string | undefined;
}

/** Creates OUT/NAME.key (+ NAME.kem.key for peers) and OUT/NAME.crt. */
export async function newIdentity(
  o: NewIdentityOptions,
): Promise<{ keyPath: string; certPath: string; kemKeyPath?: string; certificate: Certificate }> {
  const algorithm = assertAlgorithm(o.algorithm ?? DEFAULT_ALGORITHM);
  const subjectKey = generateSigningKey(algorithm);
  const kem = o.role === 'peer' ? generateKemKey() : undefined;
  const certificate = await issueCertificate({
    ...o,
    subjectKey,
    kemPublicKey: kem === undefined ? undefined : rawPublicKey(kem.publicKey),
    peerId: o.role === 'peer' ? (o.peerId ?? o.name) : o.peerId,
  });
  // Private keys go in here: the directory is 0700 whatever the umask (mkdir's mode is masked
  // by the umask, which can only take bits away from 0700). An existing directory is the user's.
  await makeOutputDir(o.outDir, { mode: 0o700, what: 'output directory', error: keysError });
  const keyPath = join(o.outDir, `${o.name}.key`);
  const certPath = join(o.outDir, `${o.name}.crt`);
  await writePrivateKey(keyPath, subjectKey, { passphrase: o.passphrase });
  const out: { keyPath: string; certPath: string; kemKeyPath?: string; certificate: Certificate } = {
    keyPath,
    certPath,
    certificate,
  };
  if (kem !== undefined) {
    out.kemKeyPath = join(o.outDir, `${o.name}.kem.key`);
    await writePrivateKey(out.kemKeyPath, kem.privateKey, { passphrase: o.passphrase });
  }
  // Leaf certificates are written with their issuer appended, so a chain travels as one file.
  const pem =
    certificatePem(certificate.der) + (o.issuerCert === undefined ? '' : certificatePem(o.issuerCert.der));
  await writeFileAtomic(certPath, pem, 0o644, { what: 'certificate', error: keysError });
  return out;
}
