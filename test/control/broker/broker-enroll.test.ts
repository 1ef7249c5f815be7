import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { rawPublicKey } from '../../../keys/algorithms.ts';
import { enrollPeer } from '../../../agent/remote/enroll-peer.ts';
import {
  createEnrollmentRequest,
  ENROLL_MAX_AGE_MS,
  keyFingerprint,
} from '../../../control/wire/enrollment.ts';
import { connectBroker } from '../../../control/wire/transport.ts';
import {
  generateKemKey,
  generateSigningKey,
  issueCertificate,
  tlsContextOptions,
  writePrivateKey,
} from '../../../keys/index.ts';
import { tempDir } from '../../helpers.ts';
import { client, makeFleetPki, startBroker } from '../broker-fixture.ts';

const pki = await makeFleetPki(0);
const code = (e: unknown) => (e as { code?: string }).code;

test('enrollment: anonymous request, operator sees the fingerprint and accepts, the peer reconnects with its certificate', async (t) => {
  const dir = await tempDir(t);
  const b = await startBroker(t, pki, { dbPath: join(dir, 'broker.db') });
  const anon = await connectBroker({
    address: `127.0.0.1:${b.port}`,
    tls: { ca: [pki.root.cert.pem] },
    role: 'peer',
  });
  t.teardown(() => anon.close());
  t.true(anon.welcome.anonymous);
  t.is(code(await t.throwsAsync(anon.request('peers-list'))), 'E_FORBIDDEN');

  const key = generateSigningKey('ml-dsa-65');
  const kem = generateKemKey();
  const kemPublicKey = rawPublicKey(kem.publicKey);
  const req = createEnrollmentRequest({ key, kemPublicKey, peerId: 'new-1', labels: { role: 'web' } });
  // Changing the signed payload (here: the peer id) breaks the proof of possession.
  const forged = { ...req, payload: { ...req.payload, peerId: 'admin' } };
  t.is(code(await t.throwsAsync(anon.request('enroll-request', { request: forged }))), 'E_ENROLL_SIGNATURE');
  const r = await anon.request('enroll-request', { request: req });
  t.is(r.fingerprint, keyFingerprint(rawPublicKey(key.publicKey)));
  t.is((await anon.request('enroll-status', { requestId: r.requestId })).state, 'pending');

  const op = await client(t, pki, pki.operator, b.port, 'operator');
  const list = (await op.c.request('enrollment-list')).requests as Array<Record<string, unknown>>;
  t.like(list[0], { requestId: r.requestId, peerId: 'new-1', fingerprint: r.fingerprint, state: 'pending' });

  // A certificate for another key is refused: the broker hands out only what was asked for.
  const other = generateSigningKey('ml-dsa-65');
  const wrong = await issueCertificate({
    role: 'peer',
    name: 'new-1',
    subjectKey: other,
    issuerKey: pki.root.key,
    issuerCert: pki.root.cert,
    peerId: 'new-1',
    kemPublicKey,
  });
  t.is(
    code(
      await t.throwsAsync(
        op.c.request('enrollment-accept', { requestId: r.requestId, certificate: wrong.pem }),
      ),
    ),
    'E_ENROLL_CERT',
  );
  const cert = await issueCertificate({
    role: 'peer',
    name: 'new-1',
    subjectKey: key,
    issuerKey: pki.root.key,
    issuerCert: pki.root.cert,
    peerId: 'new-1',
    kemPublicKey,
  });
  const acc = await op.c.request('enrollment-accept', { requestId: r.requestId, certificate: cert.pem });
  t.is(acc.peerId, 'new-1');
  const st = await anon.request('enroll-status', { requestId: r.requestId });
  t.is(st.state, 'accepted');
  t.is(st.certificate, cert.pem);

  const keyPath = join(dir, 'new-1.key');
  const certPath = join(dir, 'new-1.crt');
  await writePrivateKey(keyPath, key);
  await writeFile(certPath, st.certificate as string);
  const peer = await connectBroker({
    address: `127.0.0.1:${b.port}`,
    tls: tlsContextOptions({ keyPath, certPath, anchors: pki.anchors }),
    role: 'peer',
  });
  t.teardown(() => peer.close());
  t.is(peer.welcome.identity, 'new-1');
  const peers = (await op.c.request('peers-list')).peers as Array<Record<string, unknown>>;
  t.like(peers[0], { peerId: 'new-1', online: true, labels: { role: 'web' } });
  t.is(
    code(await t.throwsAsync(op.c.request('enrollment-reject', { requestId: r.requestId }))),
    'E_ENROLL_STATE',
  );

  const audit = (await op.c.request('audit-get')).entries as Array<{ kind: string }>;
  t.deepEqual(
    audit.map((e) => e.kind),
    ['enroll-request', 'enrollment-accept'],
  );
});

test('enrollment: a rejected request stays rejected', async (t) => {
  const dir = await tempDir(t);
  const b = await startBroker(t, pki, { dbPath: join(dir, 'broker.db') });
  const anon = await connectBroker({
    address: `127.0.0.1:${b.port}`,
    tls: { ca: [pki.root.cert.pem] },
    role: 'peer',
  });
  t.teardown(() => anon.close());
  const key = generateSigningKey('ml-dsa-44');
  const req = createEnrollmentRequest({
    key,
    kemPublicKey: rawPublicKey(generateKemKey().publicKey),
    peerId: 'new-2',
  });
  const r = await anon.request('enroll-request', { request: req });
  const op = await client(t, pki, pki.operator, b.port, 'operator');
  await op.c.request('enrollment-reject', { requestId: r.requestId });
  t.is((await anon.request('enroll-status', { requestId: r.requestId })).state, 'rejected');
  t.is(
    code(await t.throwsAsync(anon.request('enroll-status', { requestId: 'f'.repeat(32) }))),
    'E_ENROLL_UNKNOWN',
  );
});

test('enrollPeer() waits for the operator and returns the issued certificate', async (t) => {
  const dir = await tempDir(t);
  const b = await startBroker(t, pki, { dbPath: join(dir, 'broker.db') });
  const op = await client(t, pki, pki.operator, b.port, 'operator');
  const key = generateSigningKey('ml-dsa-65');
  const kemPublicKey = rawPublicKey(generateKemKey().publicKey);
  const request = createEnrollmentRequest({ key, kemPublicKey, peerId: 'new-3' });
  const enrolled = enrollPeer({
    address: `127.0.0.1:${b.port}`,
    anchors: pki.anchors,
    request,
    pollMs: 50,
    timeoutMs: 20_000,
  });
  let pending: Array<{ requestId: string }> = [];
  for (let i = 0; i < 100 && pending.length === 0; i++) {
    pending = (await op.c.request('enrollment-list')).requests as Array<{ requestId: string }>;
    if (pending.length === 0) await new Promise((r) => setTimeout(r, 50));
  }
  const cert = await issueCertificate({
    role: 'peer',
    name: 'new-3',
    subjectKey: key,
    issuerKey: pki.root.key,
    issuerCert: pki.root.cert,
    peerId: 'new-3',
    kemPublicKey,
  });
  await op.c.request('enrollment-accept', { requestId: pending[0]?.requestId, certificate: cert.pem });
  const r = await enrolled;
  t.is(r?.certificate, cert.pem);
  t.is(r?.fingerprint, keyFingerprint(rawPublicKey(key.publicKey)));
});

test('enrollment: a pending request older than the accept window is dropped at listing and by the timer, and a fresh one from the same key takes its place', async (t) => {
  const dir = await tempDir(t);
  let clock = Date.now();
  const b = await startBroker(t, pki, { dbPath: join(dir, 'broker.db'), now: () => new Date(clock) });
  const anon = await connectBroker({
    address: `127.0.0.1:${b.port}`,
    tls: { ca: [pki.root.cert.pem] },
    role: 'peer',
  });
  t.teardown(() => anon.close());
  const op = await client(t, pki, pki.operator, b.port, 'operator');
  const key = generateSigningKey('ml-dsa-44');
  const kemPublicKey = rawPublicKey(generateKemKey().publicKey);
  const ask = (peerId: string, k = key) =>
    anon.request('enroll-request', {
      request: createEnrollmentRequest({ key: k, kemPublicKey, peerId, now: new Date(clock) }),
    });
  const listed = async () =>
    ((await op.c.request('enrollment-list')).requests as Array<{ requestId: string }>).map(
      (x) => x.requestId,
    );

  const r = await ask('old-1');
  clock += ENROLL_MAX_AGE_MS - 1000;
  t.deepEqual(await listed(), [r.requestId], 'still within the window: listed');
  clock += 2000;
  t.deepEqual(await listed(), [], 'past the window: gone from the list');
  t.is(
    code(await t.throwsAsync(anon.request('enroll-status', { requestId: r.requestId }))),
    'E_ENROLL_UNKNOWN',
  );

  // The machine asks again (same key, fresh `created`): pending again, and it can be accepted.
  const again = await ask('old-1');
  t.is(again.requestId, r.requestId);
  t.is(again.state, 'pending');
  const cert = await issueCertificate({
    role: 'peer',
    name: 'old-1',
    subjectKey: key,
    issuerKey: pki.root.key,
    issuerCert: pki.root.cert,
    peerId: 'old-1',
    kemPublicKey,
  });
  await op.c.request('enrollment-accept', { requestId: r.requestId, certificate: cert.pem });

  // Without anyone listing, the broker's timer drops a stale one too; accepted ones stay.
  const other = await ask('old-2', generateSigningKey('ml-dsa-44'));
  t.truthy(b.db.enrollment(other.requestId as string));
  clock += ENROLL_MAX_AGE_MS + 1000;
  for (let i = 0; i < 100 && b.db.enrollment(other.requestId as string) !== undefined; i++)
    await new Promise((res) => setTimeout(res, 50));
  t.is(b.db.enrollment(other.requestId as string), undefined);
  t.is(b.db.enrollment(r.requestId as string)?.state, 'accepted');
});
