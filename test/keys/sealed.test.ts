import test from 'ava';
import {
  newIdentity,
  openSecret,
  readCertificates,
  readKemPrivateKey,
  readPrivateKey,
  sealSecret,
} from '../../keys/index.ts';
import { tempDir } from '../helpers.ts';
import { codeOf, makePki } from './fixture.ts';

const pki = makePki();
const secret = new TextEncoder().encode('db-password=hunter2');

test('a sealed secret opens for its recipient peer and fails distinctly for wrong recipient, tampering and wrong sender', async (t) => {
  const p = await pki;
  const dir = await tempDir(t);
  const sealed = sealSecret({
    plaintext: secret,
    recipient: p.peer.cert,
    context: 'layer:web',
    key: p.operator.key,
    chain: p.operator.chain,
  });
  const kem = await readKemPrivateKey(p.peer.kemKeyPath ?? '');
  const o = { kemPrivateKey: kem, recipient: p.peer.cert, context: 'layer:web', anchors: [p.root.cert] };
  t.deepEqual(openSecret(sealed, o), secret);
  t.is(
    codeOf(() => openSecret(sealed, { ...o, context: 'layer:db' })),
    'E_SECRET_CONTEXT',
  );

  // Wrong recipient: another peer of the same root with its own KEM key.
  const other = await newIdentity({
    role: 'peer',
    name: 'peer2',
    outDir: dir,
    issuerKey: p.root.key,
    issuerCert: p.root.cert,
  });
  const otherCert = (await readCertificates(other.certPath))[0];
  if (otherCert === undefined) throw new Error('no cert');
  const otherKem = await readKemPrivateKey(other.kemKeyPath ?? '');
  t.is(
    codeOf(() => openSecret(sealed, { ...o, kemPrivateKey: otherKem, recipient: otherCert })),
    'E_SECRET_RECIPIENT',
  );
  // The right recipient certificate with a wrong KEM private key cannot decrypt.
  t.is(
    codeOf(() => openSecret(sealed, { ...o, kemPrivateKey: otherKem })),
    'E_SECRET_DECRYPT',
  );

  // Tampered: one byte of the ciphertext changed.
  const tampered = structuredClone(sealed);
  const payload = tampered.payload as { ct: string };
  const ct = Buffer.from(payload.ct, 'base64');
  ct[0] = (ct[0] ?? 0) ^ 1;
  payload.ct = ct.toString('base64');
  t.is(
    codeOf(() => openSecret(tampered, o)),
    'E_SIG_INVALID',
  );

  // Wrong sender: an operator of another root.
  const root2 = await newIdentity({ role: 'user-root', name: 'root2', outDir: dir });
  const r2key = await readPrivateKey(root2.keyPath);
  const r2cert = (await readCertificates(root2.certPath))[0];
  const op2 = await newIdentity({
    role: 'operator',
    name: 'op2',
    outDir: dir,
    issuerKey: r2key,
    issuerCert: r2cert,
    groups: ['*'],
    actions: ['*'],
  });
  const op2chain = await readCertificates(op2.certPath);
  const forged = sealSecret({
    plaintext: secret,
    recipient: p.peer.cert,
    context: 'layer:web',
    key: await readPrivateKey(op2.keyPath),
    chain: op2chain,
  });
  t.is(
    codeOf(() => openSecret(forged, o)),
    'E_CERT_UNTRUSTED',
  );
  // A peer may not seal secrets at all.
  t.is(
    codeOf(() =>
      sealSecret({
        plaintext: secret,
        recipient: p.peer.cert,
        context: 'x',
        key: p.peer.key,
        chain: p.peer.chain,
      }),
    ),
    'E_ROLE_MAY_NOT_SIGN',
  );
});

test('sealed secrets interoperate between the node and noble backends', async (t) => {
  const p = await pki;
  const kem = await readKemPrivateKey(p.peer.kemKeyPath ?? '');
  const o = { kemPrivateKey: kem, recipient: p.peer.cert, context: 'c', anchors: [p.root.cert] };
  const byNoble = sealSecret({
    plaintext: secret,
    recipient: p.peer.cert,
    context: 'c',
    key: p.operator.key,
    chain: p.operator.chain,
    backend: 'noble',
  });
  t.deepEqual(openSecret(byNoble, { ...o, backend: 'node' }), secret);
  const byNode = sealSecret({
    plaintext: secret,
    recipient: p.peer.cert,
    context: 'c',
    key: p.operator.key,
    chain: p.operator.chain,
  });
  t.deepEqual(openSecret(byNode, { ...o, backend: 'noble' }), secret);
});
