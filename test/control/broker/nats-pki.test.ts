// Every NATS user derived from our PKI by signed bindings (doc/nats.md, "Credentials from our
// PKI"): the section's sh block run as written against a real 3-node Debian nats-server cluster
// on 127.0.0.1, then a revocation carried to the servers by deriving the block again and
// reloading them — the revoked peer's connection is closed and a new one refused, by the
// servers. And each binding that must be left out is.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { boundNatsUsers, NatsRelay, signNatsBinding } from '../../../control/broker/index.ts';
import {
  buildCommand,
  connectNats,
  newNkeySeed,
  nkeyPublicKey,
  verifyResult,
} from '../../../control/wire/index.ts';
import { crlPem, type Envelope, issueCrl, newIdentity, serialize } from '../../../keys/index.ts';
import { recorder } from '../../agent/remote/recording-agent.ts';
import { ROOT, tempDir, until } from '../../helpers.ts';
import { type FleetPki, load } from '../command-fixture.ts';
import { natsPeerLink } from '../nats-peer-fixture.ts';
import { startNatsCluster } from '../nats-fixture.ts';

/** doc/nats.md's block of signed bindings: the sh block after "signed binding". */
async function howTo(): Promise<string[]> {
  const md = await readFile(join(ROOT, 'doc', 'nats.md'), 'utf8');
  const from = md.indexOf('by a **signed binding**');
  const m = /```sh\n([\s\S]*?)```/.exec(md.slice(from));
  return (m?.[1] ?? '').split('\n').filter((l) => l.trim() !== '');
}

async function pki(dir: string) {
  const pk = join(dir, 'pki');
  const root = await load(await newIdentity({ role: 'user-root', name: 'user-root', outDir: pk }));
  const under = { issuerKey: root.key, issuerCert: root.cert };
  const peer = async (name: string, o: { notBefore?: Date; days?: number } = {}) =>
    load(await newIdentity({ ...under, ...o, outDir: join(pk, name), role: 'peer', name, peerId: name }));
  return {
    root,
    web1: await peer('web-1'),
    web2: await peer('web-2'),
    old: await peer('web-3', { notBefore: new Date(Date.now() - 3 * 86400_000), days: 1 }),
    broker: await load(
      await newIdentity({ ...under, outDir: pk, role: 'broker', name: 'broker', dnsNames: ['localhost'] }),
    ),
    alice: await load(
      await newIdentity({
        ...under,
        outDir: pk,
        role: 'operator',
        name: 'alice',
        groups: ['*'],
        actions: ['*'],
      }),
    ),
    bob: await load(
      await newIdentity({
        ...under,
        outDir: pk,
        role: 'operator',
        name: 'bob',
        groups: ['web'],
        actions: ['status'],
      }),
    ),
    froot: await load(await newIdentity({ role: 'user-root', name: 'froot', outDir: join(dir, 'f') })),
  };
}

test('the how-to derives every user from signed bindings; a revoked peer is gone after the derivation and a reload, its connection refused', async (t) => {
  const dir = await tempDir(t);
  const k = await pki(dir);
  const bin = join(dir, 'bin');
  const install = await execa(join(ROOT, 'scripts', 'install-bin.sh'), [], {
    env: { MWAY_BIN_DIR: bin },
    reject: false,
  });
  t.is(install.exitCode, 0, install.stderr);
  const crlFile = join(dir, 'pki', 'user-root.crl');
  await writeFile(
    crlFile,
    crlPem(await issueCrl({ issuerKey: k.root.key, issuerCert: k.root.cert, serials: [] })),
  );
  await writeFile(
    join(dir, 'broker.json'),
    JSON.stringify({
      key: k.broker.keyPath,
      certificate: k.broker.certPath,
      anchors: [k.root.certPath],
      crls: [crlFile],
      database: join(dir, 'broker.sqlite'),
    }),
  );
  const lines = await howTo();
  t.is(lines.length, 8, lines.join('\n'));
  const sh = (line: string) =>
    execa('bash', ['--norc', '--noprofile', '-euo', 'pipefail', '-c', line], {
      cwd: dir,
      reject: false,
      env: { PATH: `${bin}:${process.env.PATH ?? ''}`, HOME: join(dir, 'home'), MWAY_KEY_PASSPHRASE: '' },
      extendEnv: false,
      timeout: 60_000,
    });
  const reload = lines.at(-1) as string;
  t.is(reload, 'nats-server --signal reload=<pid>');
  const derive = lines.at(-2) as string;
  for (const l of lines.slice(0, -1)) {
    const r = await sh(l);
    t.is(r.exitCode, 0, `${l}\n${r.stdout}${r.stderr}`);
  }
  // web-2 is provisioned the same way, its binding in the folder too.
  const r2 = await sh(
    `milkywaysrvd nats-user --out pki/web-2/peer.nk --key pki/web-2/web-2.key --cert pki/web-2/web-2.crt --binding nats-bindings/web-2.json`,
  );
  t.is(r2.exitCode, 0, r2.stderr);
  const d1 = await sh(derive);
  t.is(d1.exitCode, 0, d1.stderr);
  t.is(d1.stderr, '', 'nothing left out');
  const conf = join(dir, 'mway-auth.conf');
  const block = await readFile(conf, 'utf8');
  t.is((block.match(/"nkey": "U[A-Z2-7]{55}"/g) ?? []).length, 5, 'broker, web-1, web-2, alice, enroll');

  const cluster = await startNatsCluster(t, 3, { include: conf });
  const relay = await NatsRelay.open({ servers: cluster.urls, nkey: join(dir, 'broker.nk') });
  t.teardown(() => relay.close());
  await relay.ensureStreams(3);
  const fleet = { dir, root: k.root } as unknown as FleetPki;
  const logs: string[] = [];
  const rec1 = recorder();
  await natsPeerLink(
    t,
    fleet,
    k.web1,
    { servers: cluster.urls, nkey: join(dir, 'pki/web-1/peer.nk') },
    {
      rec: rec1,
      log: (level, m) => logs.push(`${level}: ${m}`),
    },
  );
  const rec2 = recorder();
  await natsPeerLink(
    t,
    fleet,
    k.web2,
    { servers: cluster.urls, nkey: join(dir, 'pki/web-2/peer.nk') },
    { rec: rec2 },
  );
  let seq = 0;
  const expires = () => new Date(Date.now() + 600_000).toISOString();
  const run = async (peer: string, job: string) => {
    const env = buildCommand({
      action: 'service.restart',
      args: { service: job },
      audience: { fleet: 'prod', target: `peer:${peer}`, groups: [], peers: [peer] },
      seq: ++seq,
      key: k.alice.key,
      chain: k.alice.chain,
    });
    await relay.deliver(peer, job, env, expires());
    const a = await relay.answer(peer, job, 60_000);
    return (
      a !== undefined &&
      verifyResult(a.result as Envelope, { anchors: [k.root.cert] }).payload.status === 'ok'
    );
  };
  t.true(await run('web-1', 'one'), 'web-1 runs a command as its bound user');
  t.deepEqual(rec1.calls, ['restart one']);
  // The auditor and the enrolling user connect as themselves.
  for (const [who, seed] of [
    [{ role: 'auditor', name: 'alice' }, 'alice.nk'],
    [{ role: 'enroll' }, 'enroll.nk'],
  ] as const) {
    const nc = await connectNats({ servers: cluster.urls, who, nkey: join(dir, seed), name: `t-${seed}` });
    await nc.close();
  }

  // The user root revokes web-1: the CRL where broker.json names it, the block derived again.
  await writeFile(
    crlFile,
    crlPem(await issueCrl({ issuerKey: k.root.key, issuerCert: k.root.cert, serials: [k.web1.cert.serial] })),
  );
  const d2 = await sh(derive);
  t.is(d2.exitCode, 0, d2.stderr);
  t.regex(d2.stderr, /warning: nats-bindings\/web-1\.json left out: .*revoked/i);
  const own = await readFile(join(dir, 'pki/web-1/peer.nk'), 'utf8');
  t.false((await readFile(conf, 'utf8')).includes(await nkeyPublicKey(new TextEncoder().encode(own.trim()))));
  for (const n of cluster.nodes) {
    const r = await sh(reload.replace('<pid>', String(n.proc?.pid)));
    t.is(r.exitCode, 0, r.stderr);
  }
  // The servers close web-1's connection and refuse it from then on.
  const connz = async () =>
    Promise.all(
      cluster.nodes.map((n) =>
        fetch(`http://127.0.0.1:${n.httpPort}/connz?limit=1000`)
          .then((r) => r.json() as Promise<{ connections?: Array<{ name?: string }> }>)
          .then((v) => (v.connections ?? []).map((c) => c.name)),
      ),
    );
  await until(
    'no server has web-1 connected',
    async () => !(await connz()).flat().includes('mway-peer-web-1'),
    30_000,
  );
  await until('web-1 is refused', () => logs.some((l) => /Authorization Violation/.test(l)), 30_000);
  const refused = await connectNats({
    servers: cluster.urls,
    who: { role: 'peer', peerId: 'web-1' },
    nkey: join(dir, 'pki/web-1/peer.nk'),
    name: 't-web-1',
  }).then(
    async (nc) => {
      await nc.close();
      return 'connected';
    },
    (e: Error & { code?: string }) => `${e.code}: ${e.message}`,
  );
  t.regex(refused, /^E_NATS_CREDENTIALS: .*Authorization Violation/);
  t.true((await connz()).flat().includes('mway-peer-web-2'), 'web-2 stays connected');
  t.true(await run('web-2', 'two'), 'web-2 still runs commands');
  t.deepEqual(rec2.calls, ['restart two']);
  t.deepEqual(rec1.calls, ['restart one']);
});

test('a binding is left out when its chain, validity, revocation, signer or content fails', async (t) => {
  const dir = await tempDir(t);
  const k = await pki(dir);
  const nkey = async () => nkeyPublicKey(await newNkeySeed());
  const bind = async (
    id: { key: typeof k.root.key; chain: typeof k.root.chain },
    o: { for?: 'enroll' } = {},
  ) => serialize(signNatsBinding({ nkey: await nkey(), key: id.key, chain: id.chain, ...o }));
  const fop = await load(
    await newIdentity({
      role: 'operator',
      name: 'fop',
      outDir: join(dir, 'f'),
      issuerKey: k.froot.key,
      issuerCert: k.froot.cert,
      groups: ['*'],
      actions: ['*'],
    }),
  );
  const tampered = JSON.parse(new TextDecoder().decode(await bind(k.web2)));
  tampered.payload.nkey = await nkey();
  const files: Record<string, Uint8Array> = {
    'broker.json': await bind(k.broker),
    'web-1.json': await bind(k.web1),
    'web-1-again.json': await bind(k.web1),
    'expired.json': await bind(k.old),
    'foreign.json': await bind(fop),
    'tampered.json': new TextEncoder().encode(JSON.stringify(tampered)),
    'peer-enroll.json': await bind(k.web2, { for: 'enroll' }),
    'bob-enroll.json': await bind(k.bob, { for: 'enroll' }),
    'alice.json': await bind(k.alice),
    'alice-enroll.json': await bind(k.alice, { for: 'enroll' }),
  };
  const crl = await issueCrl({
    issuerKey: k.root.key,
    issuerCert: k.root.cert,
    serials: [k.bob.cert.serial],
  });
  const list = Object.entries(files).map(([source, bytes]) => ({ source, bytes }));
  const o = { anchors: [k.root.cert] };
  const u = boundNatsUsers(list, o);
  t.truthy(u.broker);
  t.truthy(u.enroll);
  t.deepEqual(Object.keys(u.auditors), ['alice']);
  t.deepEqual(Object.keys(u.peers), [], 'two nkeys for web-1: neither');
  const why = Object.fromEntries(u.skipped.map((s) => [s.source, s.reason]));
  t.regex(why['web-1.json'] ?? '', /bound to 2 different nkeys/);
  t.regex(why['web-1-again.json'] ?? '', /bound to 2 different nkeys/);
  t.regex(why['expired.json'] ?? '', /expired|not valid|notAfter/i);
  t.regex(why['foreign.json'] ?? '', /anchor|chain|issuer/i);
  t.regex(why['tampered.json'] ?? '', /signature/i);
  t.regex(why['peer-enroll.json'] ?? '', /enrolling user is bound by an operator/);
  t.regex(why['bob-enroll.json'] ?? '', /enrolling user is bound by an operator/);
  t.is(u.skipped.length, 7, JSON.stringify(why));
  // One binding for web-1; bob revoked; the database knows web-2 under another certificate.
  const u2 = boundNatsUsers(
    [
      { source: 'web-1.json', bytes: files['web-1.json'] as Uint8Array },
      { source: 'web-2.json', bytes: await bind(k.web2) },
      { source: 'bob.json', bytes: await bind(k.bob) },
    ],
    {
      ...o,
      crls: [crl],
      peers: [
        {
          peerId: 'web-2',
          name: 'web-2',
          fingerprint: 'f'.repeat(64),
          certificate: '',
          labels: {},
          lastSeen: null,
          status: null,
          created: new Date().toISOString(),
        },
      ],
    },
  );
  t.deepEqual(Object.keys(u2.peers), ['web-1']);
  t.deepEqual(u2.auditors, {});
  const why2 = Object.fromEntries(u2.skipped.map((s) => [s.source, s.reason]));
  t.regex(why2['web-2.json'] ?? '', /holds another certificate now/);
  t.regex(why2['bob.json'] ?? '', /revoked/i);
});
