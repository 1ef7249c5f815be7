// Enrollment through NATS (doc/nats.md, "Enrolling through NATS"): a machine with no identity and
// only the shared enrolling nkey asks milkywaysrvd for a certificate on mway.enroll.<requestId>,
// over a real 3-node nats-server cluster with credentials. The broker keeps the request pending
// as over TLS (the same `enrollment-list` and audit entry), `mway peers accept` issues the
// certificate over TLS to the broker as always, the machine stores it and runs commands as its
// own NATS user once the operator derives the servers' users from the broker's database (its
// nkey is in its signed request); a CRL takes it out again. The servers, not our code, refuse the enrolling user anything but asking; the
// broker refuses a request on another key's subject.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { startPeerLink } from '../../agent/remote/peer-link.ts';
import { natsAuthorizationConf, readNatsUsers } from '../../control/broker/index.ts';
import {
  connectNats,
  createEnrollmentRequest,
  decodeBody,
  enrollSubject,
  mailboxSubject,
  message,
  messageBody,
  nkeyPublicKey,
  readNkeySeed,
} from '../../control/wire/index.ts';
import {
  crlPem,
  generateKemKey,
  generateSigningKey,
  issueCrl,
  rawPublicKey,
  readCertificates,
} from '../../keys/index.ts';
import { recorder } from '../agent/remote/recording-agent.ts';
import { makeFleetPki } from '../control/command-fixture.ts';
import { startNatsCluster } from '../control/nats-fixture.ts';
import { cli, jsonOut, tempDir, until } from '../helpers.ts';
import { startFleet } from './_fleet.ts';

const pkiP = makeFleetPki();

test('a machine with no identity enrolls through NATS as the shared enrolling user, is accepted by mway and runs commands as its own NATS user', async (t) => {
  const p = await pkiP;
  const dir = await tempDir(t);
  // The users of doc/nats.md's how-to: the broker and the enrolling user (one seed, shared by
  // every machine's image). No peer: the machine makes its own nkey and enrolls it.
  const pub: Record<string, string> = {};
  for (const who of ['broker', 'enroll']) {
    const r = await cli('milkywaysrvd', ['nats-user', '--out', join(dir, `${who}.nk`)]);
    t.is(r.exitCode, 0, r.stderr);
    pub[who] = r.stdout.trim();
  }
  const usersFile = join(dir, 'nats-users.json');
  await writeFile(usersFile, JSON.stringify({ broker: pub.broker, enroll: pub.enroll, peers: {} }));
  const conf = join(dir, 'auth.conf');
  const w = await cli('milkywaysrvd', ['nats-authorization', '--users', usersFile, '--out', conf]);
  t.is(w.exitCode, 0, w.stderr);
  t.is(await readFile(conf, 'utf8'), natsAuthorizationConf(await readNatsUsers(usersFile)));
  const cluster = await startNatsCluster(t, 3, { include: conf });
  const f = await startFleet(t, p, {
    broker: { nats: { servers: cluster.urls, replicas: 3, nkey: join(dir, 'broker.nk') } },
  });
  const mway = await f.as(p.admin, 'admin', 60_000);

  const machineLogs: string[] = [];
  const rec = recorder();
  const link = await startPeerLink({
    api: rec.api,
    stateDir: join(dir, 'm1', 'data'),
    log: (level, m) => void machineLogs.push(`${level} ${m}`),
    config: {
      nats: { servers: cluster.urls, enrollNkey: join(dir, 'enroll.nk') },
      fleet: 'prod',
      anchors: [p.root.certPath],
      enroll: { dir: join(dir, 'm1', 'identity'), labels: { image: 'web' }, pollMs: 200 },
      skewMs: 0,
      maxBackoffMs: 300,
    },
  });
  t.teardown(() => link.stop());

  const pending = async () =>
    jsonOut((await mway('peers', 'pending', '--json')).stdout) as Array<{
      requestId: string;
      fingerprint: string;
      state: string;
    }>;
  await until('the request is pending', async () => (await pending()).length === 1);
  const [row] = await pending();
  const fp = /key fingerprint ([0-9a-f]{64})/.exec(machineLogs.join('\n'))?.[1];
  t.is(row?.fingerprint, fp, 'the fingerprint the machine shows is the one pending');
  const entry = f.broker.db.audit(1, 100).find((e) => e.kind === 'enroll-request');
  t.regex(entry?.actor ?? '', /^anonymous:/, 'audited as over TLS');

  const R = ['--issuer-key', p.peerIssuer.keyPath, '--issuer-cert', p.peerIssuer.certPath];
  const acc = await mway('peers', 'accept', row?.requestId as string, ...R, '--peer-id', 'web-1');
  t.is(acc.exitCode, 0, acc.stdout + acc.stderr);
  await until('web-1 enrolled', () => link.peerId === 'web-1');
  const leaf = (await readCertificates(join(dir, 'm1', 'identity', 'peer.crt')))[0];
  t.is(leaf?.peerId, 'web-1', 'the certificate is stored beside the keys');
  // Its own nkey (made beside its keys, signed into the request) is no NATS user yet.
  const own = await nkeyPublicKey(await readNkeySeed(join(dir, 'm1', 'identity', 'peer.nk')));
  await until('the servers refuse its nkey', () =>
    machineLogs.some((l) => /refused mway-peer-web-1: Authorization Violation/.test(l)),
  );

  // The operator derives the users from the broker's database (doc/nats.md, "Credentials from
  // our PKI") and reloads the servers: web-1 connects as itself and runs a command.
  const brokerConf = join(dir, 'broker.json');
  const writeBrokerConf = (crls: string[]) =>
    writeFile(
      brokerConf,
      JSON.stringify({
        key: p.broker.keyPath,
        certificate: p.broker.certPath,
        anchors: [p.root.certPath],
        crls,
        database: join(f.dir, 'broker.sqlite'),
      }),
    );
  await writeBrokerConf([]);
  const derive = () =>
    cli('milkywaysrvd', ['nats-authorization', '--users', usersFile, '--config', brokerConf, '--out', conf]);
  const d = await derive();
  t.is(d.exitCode, 0, d.stderr);
  const text = await readFile(conf, 'utf8');
  t.is((text.match(/"nkey": "U[A-Z2-7]{55}"/g) ?? []).length, 3, 'broker, enroll and web-1');
  t.true(text.includes(own), "web-1's own nkey, from its signed request");
  for (const n of cluster.nodes) n.proc?.kill('SIGHUP');
  const run = await mway(
    'service',
    '--target',
    'peer:web-1',
    'restart',
    'hello',
    '--timeout',
    '40',
    '--json',
    '--static',
  );
  t.is(run.exitCode, 0, run.stdout + run.stderr);
  t.deepEqual(rec.calls, ['restart hello']);

  // Revoked by the peer issuer's CRL: the next derivation leaves web-1 out, and says why.
  const crl = await issueCrl({
    issuerKey: p.peerIssuer.key,
    issuerCert: p.peerIssuer.cert,
    issuerChain: p.peerIssuer.chain,
    serials: [leaf?.serial as string],
  });
  const crlFile = join(dir, 'root.crl');
  await writeFile(crlFile, crlPem(crl));
  await writeBrokerConf([crlFile]);
  const r2 = await derive();
  t.is(r2.exitCode, 0, r2.stderr);
  t.regex(r2.stderr, /web-1 \(request [0-9a-f]{32}\) left out: .*revoked/i);
  t.false((await readFile(conf, 'utf8')).includes(own));

  // What a holder of the shared enrolling seed could try. The servers refuse subscribing to the
  // requests and publishing into a mailbox (their Permissions Violation, not our code).
  const nc = await connectNats({
    servers: cluster.urls,
    who: { role: 'enroll' },
    nkey: join(dir, 'enroll.nk'),
    name: 'hostile-enroll',
  });
  t.teardown(() => nc.close());
  const seen: string[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'error') seen.push(String(s.error?.message));
  })().catch(() => {});
  const sub = nc.subscribe('mway.enroll.*');
  const subErr = await sub.closed.then((e) => (e instanceof Error ? e.message : 'closed without an error'));
  t.regex(subErr, /permissions violation/i);
  nc.publish(mailboxSubject('web-1'), new TextEncoder().encode('junk'));
  await nc.flush();
  await until('the servers refused the publish', () =>
    seen.some((s) => /permissions violation.*publish/i.test(s)),
  );
  // A request signed by one key but asked on another key's subject is refused by the broker.
  const key = generateSigningKey('ml-dsa-65');
  const other = createEnrollmentRequest({
    key,
    kemPublicKey: rawPublicKey((await import('node:crypto')).createPublicKey(generateKemKey().privateKey)),
    peerId: 'intruder',
  });
  const ans = decodeBody(
    (
      await nc.request(
        enrollSubject(row?.requestId as string),
        messageBody(message('enroll-request', { id: 7, request: other })),
        {
          timeout: 5000,
        },
      )
    ).data,
  );
  t.is(ans.kind, 'error');
  t.is(ans.code, 'E_ENROLL_INVALID');
  t.deepEqual(await pending(), [], 'nothing new is pending');
});
