// Enrollment through `mway`: an unknown peer sends a self-signed request; `mway peers pending`
// shows it with its key fingerprint; `mway peers accept` issues a peer certificate for exactly
// that key (checked by the broker and by keys/ verifyChain here); the peer then connects with
// it and takes signed commands.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { startPeerLink } from '../../agent/remote/peer-link.ts';
import { createEnrollmentRequest } from '../../control/wire/enrollment.ts';
import { connectBroker } from '../../control/wire/transport.ts';
import {
  generateKemKey,
  generateSigningKey,
  parseCertificates,
  verifyChain,
  writePrivateKey,
} from '../../keys/index.ts';
import { recorder } from '../agent/remote/recording-agent.ts';
import { makeFleetPki } from '../control/command-fixture.ts';
import { jsonOut } from '../helpers.ts';
import { startFleet } from './_fleet.ts';

const pkiP = makeFleetPki();

test('mway peers pending / accept certifies the requested key, reject refuses another, and the new peer takes signed commands', async (t) => {
  const p = await pkiP;
  const f = await startFleet(t, p);
  const { address, dir } = f;
  const mway = await f.as(p.admin, 'admin', 60_000);

  const key = generateSigningKey('ml-dsa-65');
  const kem = generateKemKey();
  const { rawPublicKey } = await import('../../keys/algorithms.ts');
  const anon = await connectBroker({ address, tls: { ca: [p.root.cert.pem] }, role: 'peer' });
  t.teardown(() => anon.close());
  const req = createEnrollmentRequest({
    key,
    kemPublicKey: rawPublicKey(kem.publicKey),
    peerId: 'new-1',
    labels: { role: 'web' },
  });
  const r = await anon.request('enroll-request', { request: req });
  const other = createEnrollmentRequest({
    key: generateSigningKey('ml-dsa-65'),
    kemPublicKey: rawPublicKey(generateKemKey().publicKey),
    peerId: 'intruder',
  });
  const r2 = await anon.request('enroll-request', { request: other });

  const pending = await mway('peers', 'pending', '--json');
  t.is(pending.exitCode, 0, pending.stderr);
  const rows = jsonOut(pending.stdout) as Array<{
    requestId: string;
    peerId: string;
    fingerprint: string;
  }>;
  t.deepEqual(rows.map((x) => x.peerId).sort(), ['intruder', 'new-1']);
  t.is(rows.find((x) => x.peerId === 'new-1')?.fingerprint, String(r.fingerprint));

  // The user root is no issuer for enrollment: refused before anything is issued.
  const byRoot = await mway(
    'peers',
    'accept',
    String(r.requestId),
    '--issuer-key',
    p.root.keyPath,
    '--issuer-cert',
    p.root.certPath,
  );
  t.is(byRoot.exitCode, 1, byRoot.stdout + byRoot.stderr);
  t.regex(byRoot.stderr, /E_ENROLL_ISSUER: .*root \(user-root\), not a peer issuer/);
  t.is((await anon.request('enroll-status', { requestId: r.requestId })).state, 'pending');

  const acc = await mway(
    'peers',
    'accept',
    String(r.requestId),
    '--issuer-key',
    p.peerIssuer.keyPath,
    '--issuer-cert',
    p.peerIssuer.certPath,
  );
  t.is(acc.exitCode, 0, acc.stdout + acc.stderr);
  t.is((await mway('peers', 'reject', 'intruder')).exitCode, 0);
  const st = await anon.request('enroll-status', { requestId: r.requestId });
  t.is(st.state, 'accepted');
  const chain = parseCertificates(st.certificate as string);
  t.deepEqual(
    chain.map((c) => c.role),
    ['peer', 'peer-issuer'],
    'issued by the peer issuer, which travels with it',
  );
  const leaf = verifyChain(chain, { anchors: [p.root.cert], roles: ['peer'] });
  t.is(leaf.peerId, 'new-1');
  t.deepEqual(Buffer.from(leaf.publicKey), Buffer.from(rawPublicKey(key.publicKey)));
  t.deepEqual(Buffer.from(leaf.kemPublicKey ?? []), Buffer.from(rawPublicKey(kem.publicKey)));
  t.is((await anon.request('enroll-status', { requestId: r2.requestId })).state, 'rejected');

  // The enrolled peer saves its certificate, connects with it and takes a signed command.
  const id = join(dir, 'new-1');
  await mkdir(id);
  await writePrivateKey(join(id, 'peer.key'), key);
  await writePrivateKey(join(id, 'peer.kem.key'), kem.privateKey);
  await writeFile(join(id, 'peer.crt'), st.certificate as string);
  const rec = recorder();
  const link = await startPeerLink({
    api: rec.api,
    stateDir: id,
    log: () => {},
    config: {
      broker: address,
      fleet: 'prod',
      key: join(id, 'peer.key'),
      cert: join(id, 'peer.crt'),
      kemKey: join(id, 'peer.kem.key'),
      anchors: [p.root.certPath],
      maxBackoffMs: 300,
    },
  });
  t.teardown(() => link.stop());
  t.is((await mway('group', 'create', 'web')).exitCode, 0);
  t.is((await mway('group', 'add', 'web', 'new-1')).exitCode, 0);
  const end = Date.now() + 15_000;
  let ok = false;
  while (!ok && Date.now() < end) {
    const r3 = await mway(
      'service',
      '--group',
      'web',
      'restart',
      'hello',
      '--timeout',
      '5',
      '--json',
      '--static',
    );
    ok = r3.exitCode === 0;
  }
  t.true(ok, 'the enrolled peer ran a signed command');
  t.deepEqual(rec.calls.slice(0, 1), ['restart hello']);
});
