// The user-root-delegated peer issuer (doc/certificate-profile.md, "Who issues what"): a CA
// certificate issued by the user root (pathLen 1) with pathLen 0, which issues peer
// certificates and nothing else, so accepting a machine needs its key and never the root's.
// Paths and CRLs are checked by keys/ and cross-checked by code nobody here wrote: Node's
// X509Certificate (verify, checkIssued), OpenSSL 3.5's own chain and CRL verifier (a TLS 1.3
// handshake with CRLs loaded; Debian's openssl 3.0 CLI cannot verify ML-DSA), and the openssl
// CLI's reading of the CRL and the basic constraints.
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { run } from '../../common/exec.ts';
import {
  assertMaySign,
  type Certificate,
  checkCrls,
  type Crl,
  crlPem,
  generateKemKey,
  generateSigningKey,
  issueCertificate,
  issueCrl,
  newIdentity,
  parseCrl,
  rawPublicKey,
  readCertificates,
  readCrls,
  readPrivateKey,
  tlsContextOptions,
  verifyChain,
} from '../../keys/index.ts';
import { tempDir } from '../helpers.ts';
import { codeOf, makePki } from './fixture.ts';

const pki = makePki();

test('a peer issued by the peer issuer verifies through it to the user root, and Node agrees link by link', async (t) => {
  const p = await pki;
  const chain = p.issuedPeer.chain;
  t.deepEqual(
    chain.map((c) => c.role),
    ['peer', 'peer-issuer'],
    'the peer file holds the peer and its issuer',
  );
  t.is(verifyChain(chain, { anchors: [p.root.cert], roles: ['peer'] }).peerId, 'peer-2');
  const [leaf, issuer, root] = [chain[0], chain[1], p.root.cert].map(
    (c) => new X509Certificate((c as Certificate).der),
  ) as [X509Certificate, X509Certificate, X509Certificate];
  t.true(leaf.checkIssued(issuer));
  t.true(leaf.verify(issuer.publicKey));
  t.true(issuer.checkIssued(root));
  t.true(issuer.verify(root.publicKey));
  t.false(leaf.verify(root.publicKey), 'the root did not sign the peer');
  t.true(issuer.ca);
  // The openssl CLI (3.0) reads the constraints it cannot verify the signatures of.
  const d = await tempDir(t);
  for (const [c, want] of [
    [p.root.cert, 'CA:TRUE, pathlen:1'],
    [p.peerIssuer.cert, 'CA:TRUE, pathlen:0'],
  ] as const) {
    const f = join(d, `${c.subject}.pem`);
    await writeFile(f, c.pem);
    const o = (await run('openssl', ['x509', '-in', f, '-noout', '-text'], { timeout: 30_000 })).stdout;
    t.regex(o, new RegExp(`Basic Constraints: critical\\s+${want}`), c.subject);
    t.regex(o, /Key Usage: critical\s+Certificate Sign, CRL Sign/, c.subject);
  }
});

test('the peer issuer issues peers only, signs no envelope, and sits under a root allowing one CA', async (t) => {
  const p = await pki;
  const kem = rawPublicKey(generateKemKey().publicKey);
  const under = { issuerKey: p.peerIssuer.key, issuerCert: p.peerIssuer.cert };
  for (const role of ['operator', 'broker', 'user', 'peer-issuer'] as const) {
    const e = await issueCertificate({
      ...under,
      role,
      name: `x-${role}`,
      subjectKey: generateSigningKey('ml-dsa-65'),
      groups: ['web'],
      actions: ['*'],
    }).catch((x: unknown) => x as { code?: string });
    t.is((e as { code?: string }).code, 'E_CERT_ROLE', role);
  }
  // The same operator forged past the issuing check (its issuer copy relabelled) fails the path.
  const forged = await issueCertificate({
    role: 'operator',
    name: 'forged-op',
    subjectKey: generateSigningKey('ml-dsa-65'),
    issuerKey: p.peerIssuer.key,
    issuerCert: { ...p.peerIssuer.cert, role: 'user-root' },
    groups: ['*'],
    actions: ['*'],
  });
  t.is(
    codeOf(() => verifyChain([forged, p.peerIssuer.cert], { anchors: [p.root.cert] })),
    'E_CERT_ROLE',
  );
  t.is(
    codeOf(() => assertMaySign(p.peerIssuer.cert, 'command')),
    'E_ROLE_MAY_NOT_SIGN',
  );
  t.is(
    codeOf(() => assertMaySign(p.peerIssuer.cert, 'result')),
    'E_ROLE_MAY_NOT_SIGN',
  );
  // Only the user root issues a peer issuer; the vendor root may not.
  const v = await issueCertificate({
    role: 'peer-issuer',
    name: 'v-issuer',
    subjectKey: generateSigningKey('ml-dsa-65'),
    issuerKey: p.vendorRoot.key,
    issuerCert: p.vendorRoot.cert,
  }).catch((x: unknown) => x as { code?: string });
  t.is((v as { code?: string }).code, 'E_CERT_ROLE');
  // A root made with pathLen 0 (before the peer issuer existed) allows no CA below it.
  const oldRootKey = generateSigningKey('ml-dsa-65');
  const oldRoot = await issueCertificate({
    role: 'user-root',
    name: 'old-root',
    subjectKey: oldRootKey,
    pathLen: 0,
  });
  const oldIssuerKey = generateSigningKey('ml-dsa-65');
  const oldIssuer = await issueCertificate({
    role: 'peer-issuer',
    name: 'old-issuer',
    subjectKey: oldIssuerKey,
    issuerKey: oldRootKey,
    issuerCert: oldRoot,
  });
  const oldPeer = await issueCertificate({
    role: 'peer',
    name: 'old-peer',
    subjectKey: generateSigningKey('ml-dsa-65'),
    kemPublicKey: kem,
    issuerKey: oldIssuerKey,
    issuerCert: oldIssuer,
  });
  t.is(
    codeOf(() => verifyChain([oldPeer, oldIssuer], { anchors: [oldRoot] })),
    'E_CERT_PATHLEN',
  );
  // A peer issuer of another root is no way in.
  t.is(
    codeOf(() => verifyChain([oldPeer, oldIssuer], { anchors: [p.root.cert] })),
    'E_CERT_UNTRUSTED',
  );
  // Without the issuer in the chain the peer cannot be placed.
  t.is(
    codeOf(() => verifyChain([p.issuedPeer.cert], { anchors: [p.root.cert] })),
    'E_CERT_UNTRUSTED',
  );
});

async function issuedUnder(p: Awaited<typeof pki>, dir: string, name: string) {
  const r = await newIdentity({
    role: 'peer',
    name,
    outDir: dir,
    issuerKey: p.peerIssuer.key,
    issuerCert: p.peerIssuer.cert,
  });
  return { ...r, chain: await readCertificates(r.certPath) };
}

test("the peer issuer's CRL carries its chain, is accepted only through it, and revokes its peers", async (t) => {
  const p = await pki;
  const d = await tempDir(t);
  const gone = await issuedUnder(p, d, 'gone');
  const crl = await issueCrl({
    issuerKey: p.peerIssuer.key,
    issuerCert: p.peerIssuer.cert,
    issuerChain: p.peerIssuer.chain,
    serials: [gone.certificate.serial],
  });
  const file = join(d, 'peer-issuer.crl');
  await writeFile(file, crlPem(crl));
  const text = await readFile(file, 'utf8');
  t.deepEqual(
    [...text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----/g)].map((m) => m[1]),
    ['X509 CRL', 'CERTIFICATE', 'CERTIFICATE'],
  );
  const [back] = await readCrls(file);
  if (back === undefined) throw new Error('no CRL read back');
  t.deepEqual(
    back.issuerChain?.map((c) => c.role),
    ['peer-issuer', 'user-root'],
  );
  checkCrls([back], [p.root.cert]);
  t.is(
    codeOf(() => verifyChain(gone.chain, { anchors: [p.root.cert], crls: [back] })),
    'E_CERT_REVOKED',
  );
  // Its other peers, and every chain it does not issue, are untouched by it.
  verifyChain(p.issuedPeer.chain, { anchors: [p.root.cert], crls: [back] });
  verifyChain(p.operator.chain, { anchors: [p.root.cert], crls: [back] });
  // openssl (3.0) reads the same issuer and serial.
  const o = (await run('openssl', ['crl', '-in', file, '-noout', '-text'], { timeout: 30_000 })).stdout;
  t.regex(o, /Issuer: CN = peer-issuer, O = MilkyWay peer-issuer/);
  t.regex(o, new RegExp(`Serial Number: ${gone.certificate.serial.toUpperCase()}`));

  // Without its chain the issuer is unknown: an error, never a list silently dropped.
  const bare = parseCrl(crl.der);
  t.is(bare.issuerChain, undefined);
  t.is(
    codeOf(() => checkCrls([bare], [p.root.cert])),
    'E_CRL_ISSUER_UNKNOWN',
  );
  // A chain that is not its issuer's, or does not reach our root, or is not a peer issuer.
  const withChain = (c: Crl, chain: Certificate[]): Crl => ({ ...c, issuerChain: chain });
  t.is(
    codeOf(() => checkCrls([withChain(bare, p.vendor.chain)], [p.root.cert])),
    'E_CRL_ISSUER_UNKNOWN',
  );
  t.is(
    codeOf(() => checkCrls([back], [p.vendorRoot.cert])),
    'E_CERT_UNTRUSTED',
  );
  // The same name under another key: its chain verifies, the CRL's signature does not.
  const otherKey = generateSigningKey('ml-dsa-65');
  const impostor = await issueCertificate({
    role: 'peer-issuer',
    name: 'peer-issuer',
    subjectKey: otherKey,
    issuerKey: p.root.key,
    issuerCert: p.root.cert,
  });
  t.is(
    codeOf(() => checkCrls([withChain(bare, [impostor])], [p.root.cert])),
    'E_CRL_SIGNATURE',
  );
  const signedByImpostor = await issueCrl({
    issuerKey: otherKey,
    issuerCert: impostor,
    serials: [p.issuedPeer.cert.serial],
  });
  checkCrls([signedByImpostor], [p.root.cert]);
  // …and a list by that other key does not speak for the real issuer's peers.
  verifyChain(p.issuedPeer.chain, { anchors: [p.root.cert], crls: [signedByImpostor] });
  // A damaged byte in the CRL's signed body.
  const der = new Uint8Array(crl.der);
  der[der.length - 40] = (der[der.length - 40] as number) ^ 1;
  t.is(
    codeOf(() => checkCrls([{ ...parseCrl(der), issuerChain: p.peerIssuer.chain }], [p.root.cert])),
    'E_CRL_SIGNATURE',
  );
  // A CRL block after the certificates is a file put together wrong.
  t.is(
    codeOf(() => parseCrl(`${text}${crlPem(bare)}`)),
    'E_CRL_MALFORMED',
  );
});

test('a re-issued peer issuer (same key) is still bound by the CRL that carries its older copy', async (t) => {
  const p = await pki;
  const d = await tempDir(t);
  const renewed = await issueCertificate({
    role: 'peer-issuer',
    name: 'peer-issuer',
    subjectKey: p.peerIssuer.key,
    issuerKey: p.root.key,
    issuerCert: p.root.cert,
  });
  t.not(renewed.fingerprint, p.peerIssuer.cert.fingerprint);
  const r = await newIdentity({
    role: 'peer',
    name: 'renewed-peer',
    outDir: d,
    issuerKey: p.peerIssuer.key,
    issuerCert: renewed,
  });
  const chain = await readCertificates(r.certPath);
  const crl = await issueCrl({
    issuerKey: p.peerIssuer.key,
    issuerCert: p.peerIssuer.cert,
    serials: [r.certificate.serial],
  });
  t.is(
    codeOf(() => verifyChain(chain, { anchors: [p.root.cert], crls: [crl] })),
    'E_CERT_REVOKED',
  );
});

test("the root's CRL revoking the peer issuer cuts off every peer it issued", async (t) => {
  const p = await pki;
  const rootCrl = await issueCrl({
    issuerKey: p.root.key,
    issuerCert: p.root.cert,
    serials: [p.peerIssuer.cert.serial],
  });
  t.is(rootCrl.issuerChain, undefined, "a root's CRL carries no chain (the root is the anchor)");
  t.is(
    codeOf(() => verifyChain(p.issuedPeer.chain, { anchors: [p.root.cert], crls: [rootCrl] })),
    'E_CERT_REVOKED',
  );
  verifyChain(p.peer.chain, { anchors: [p.root.cert], crls: [rootCrl] });
});

/** One TLS 1.3 handshake; what the server's OpenSSL said of the client's chain. */
async function handshake(
  server: ReturnType<typeof tlsContextOptions>,
  client: ReturnType<typeof tlsContextOptions>,
  crls: string[] = [],
): Promise<{ authorized: boolean; error: string | undefined }> {
  const srv = createServer({
    ...server,
    requestCert: true,
    rejectUnauthorized: false,
    ...(crls.length ? { crl: crls } : {}),
  });
  const seen = new Promise<{ authorized: boolean; error: string | undefined }>((resolve) =>
    srv.once('secureConnection', (s: TLSSocket) => {
      resolve({ authorized: s.authorized, error: s.authorizationError?.toString() });
      s.end();
    }),
  );
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  const c = connect({ ...client, host: '127.0.0.1', port, checkServerIdentity: () => undefined });
  c.on('error', () => {});
  try {
    return await seen;
  } finally {
    c.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  }
}

test("OpenSSL's own verifier agrees: it accepts the delegated chain, refuses it under a pathLen 0 root, and applies the issuer's CRL", async (t) => {
  const p = await pki;
  const d = await tempDir(t);
  const anchors = [p.root.cert];
  const broker = tlsContextOptions({ keyPath: p.broker.keyPath, certPath: p.broker.certPath, anchors });
  const peer = (keyPath: string, certPath: string) => tlsContextOptions({ keyPath, certPath, anchors });
  const ok = await handshake(broker, peer(p.issuedPeer.keyPath, p.issuedPeer.certPath));
  t.deepEqual(ok, { authorized: true, error: undefined });

  // The peer file without its issuer: OpenSSL cannot build the path either.
  const lone = join(d, 'lone.crt');
  await writeFile(lone, p.issuedPeer.cert.pem);
  const loneR = await handshake(broker, peer(p.issuedPeer.keyPath, lone));
  t.false(loneR.authorized);
  t.regex(String(loneR.error), /UNABLE_TO_(GET_ISSUER_CERT|VERIFY_LEAF_SIGNATURE)/);

  // Under a root that allows no CA below it, OpenSSL refuses the path as keys/ does.
  const root0Dir = join(d, 'r0');
  const root0 = await newIdentity({ role: 'user-root', name: 'root0', outDir: root0Dir, pathLen: 0 });
  t.is(root0.certificate.pathLen, 0);
  const issuer0 = await newIdentity({
    role: 'peer-issuer',
    name: 'issuer0',
    outDir: root0Dir,
    issuerKey: await readPrivateKey(root0.keyPath),
    issuerCert: root0.certificate,
  });
  const peer0 = await newIdentity({
    role: 'peer',
    name: 'peer0',
    outDir: root0Dir,
    issuerKey: await readPrivateKey(issuer0.keyPath),
    issuerCert: issuer0.certificate,
  });
  const server0 = { ...broker, ca: [root0.certificate.pem] };
  const r0 = await handshake(server0, { ...peer(peer0.keyPath, peer0.certPath) });
  t.false(r0.authorized);
  t.regex(String(r0.error), /PATH_LENGTH_EXCEEDED/);

  // CRLs: OpenSSL checks every CA of the path (Node sets CRL_CHECK_ALL), so it gets the root's
  // (empty) list and the peer issuer's, which revokes one of two peers.
  const gone = await issuedUnder(p, d, 'tls-gone');
  const issuerCrl = await issueCrl({
    issuerKey: p.peerIssuer.key,
    issuerCert: p.peerIssuer.cert,
    serials: [gone.certificate.serial],
  });
  const rootCrl = await issueCrl({ issuerKey: p.root.key, issuerCert: p.root.cert, serials: [] });
  const bare = (c: Crl) => crlPem({ ...c, issuerChain: [] });
  const crls = [bare(rootCrl), bare(issuerCrl)];
  const revoked = await handshake(broker, peer(gone.keyPath, gone.certPath), crls);
  t.false(revoked.authorized);
  t.regex(String(revoked.error), /CERT_REVOKED/);
  const kept = await handshake(broker, peer(p.issuedPeer.keyPath, p.issuedPeer.certPath), crls);
  t.deepEqual(kept, { authorized: true, error: undefined });
  // keys/ says the same of both.
  t.is(
    codeOf(() => verifyChain(gone.chain, { anchors, crls: [rootCrl, issuerCrl] })),
    'E_CERT_REVOKED',
  );
  verifyChain(p.issuedPeer.chain, { anchors, crls: [rootCrl, issuerCrl] });
});
