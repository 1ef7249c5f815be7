// Revocation that travels: `mway keys crl` creates the root's CRL, `mway keys revoke` extends it,
// the running `milkywaysrvd` puts it in force without a restart (an operator connected and one
// connecting are both refused), and `mway crl push` installs it on peers, which keep it in their
// writable state across a restart and refuse a CRL older than the one in force.
import { copyFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { startPeerLink } from '../../agent/remote/peer-link.ts';
import { OperatorClient, readOperatorConfig } from '../../control/operator/operator-client.ts';
import { nextOperatorSeq } from '../../control/operator/operator-seq.ts';
import { buildCommand, envelopeDigest } from '../../control/wire/index.ts';
import { newIdentity, readCertificates, readPrivateKey } from '../../keys/index.ts';
import { recorder } from '../agent/remote/recording-agent.ts';
import { makeFleetPki } from '../control/command-fixture.ts';
import { BINS, cli, jsonOut, tempDir, until } from '../helpers.ts';

const pkiP = makeFleetPki();

async function startBroker(
  t: ExecutionContext,
  config: string,
): Promise<{ address: string; lines: string[] }> {
  const proc = execa(process.execPath, [BINS.milkywaysrvd, '--config', config, '--json'], {
    reject: false,
    timeout: 240_000,
    buffer: false,
  });
  t.teardown(() => void proc.kill('SIGTERM'));
  const lines: string[] = [];
  proc.stderr?.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
  const address = await new Promise<string>((resolve, reject) => {
    let buf = '';
    proc.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\n'))
        resolve((jsonOut(buf.split('\n')[0] as string) as { listening: string }).listening);
    });
    void proc.then((r) =>
      reject(new Error(`milkywaysrvd exited ${String(r.exitCode)}: ${lines.join('\n')}`)),
    );
  });
  return { address, lines };
}

test('a revoked operator is refused by the running broker at once and, after mway crl push, by the peers too', async (t) => {
  const p = await pkiP;
  const dir = await tempDir(t);
  const crl = join(dir, 'root.crl');
  const R = ['--issuer-key', p.root.keyPath, '--issuer-cert', p.root.certPath];
  const made = await cli('mway', ['keys', 'crl', ...R, '--crl', crl]);
  t.is(made.exitCode, 0, made.stderr);
  t.regex(made.stdout, /created .*root\.crl \(0 revoked/);
  const emptyCrl = join(dir, 'empty.crl');
  await copyFile(crl, emptyCrl);
  // An operator to revoke later (the fixture's revoked one is revoked from the start).
  const bob = await newIdentity({
    role: 'operator',
    name: 'bob',
    outDir: dir,
    issuerKey: p.root.key,
    issuerCert: p.root.cert,
    groups: ['web'],
    actions: ['status'],
  });
  const config = join(dir, 'broker.json');
  await writeFile(
    config,
    JSON.stringify({
      listen: '127.0.0.1:0',
      key: p.broker.keyPath,
      certificate: p.broker.certPath,
      anchors: [p.root.certPath],
      crls: [crl],
      database: join(dir, 'broker.db'),
      mdns: { enabled: false },
    }),
  );
  const broker = await startBroker(t, config);
  const peerConfig = {
    broker: broker.address,
    fleet: 'prod',
    key: p.p1.keyPath,
    cert: p.p1.certPath,
    kemKey: p.p1.kemKeyPath,
    anchors: [p.root.certPath],
    maxBackoffMs: 300,
  };
  const state = join(dir, 'p1');
  let link = await startPeerLink({ api: recorder().api, stateDir: state, log: () => {}, config: peerConfig });
  t.teardown(() => link.stop());
  await until('p1 linked', () => link.connected);

  const as = async (name: string, key: string, cert: string) => {
    const env = { MWAY_CONFIG_DIR: join(dir, `mway-${name}`) };
    const args = [
      'config',
      'init',
      '--broker',
      broker.address,
      '--fleet',
      'prod',
      '--key',
      key,
      '--cert',
      cert,
    ];
    t.is((await cli('mway', [...args, '--anchor', p.root.certPath], { env })).exitCode, 0);
    return { env, run: (...a: string[]) => cli('mway', a, { env, timeout: 60_000 }) };
  };
  const admin = await as('admin', p.admin.keyPath, p.admin.certPath);
  const bobCli = await as('bob', bob.keyPath, bob.certPath);
  t.is((await admin.run('group', 'create', 'web')).exitCode, 0);
  t.is((await admin.run('group', 'add', 'web', 'p1')).exitCode, 0);
  t.is((await bobCli.run('status', '--group', 'web')).exitCode, 0, 'bob may command web');

  // Bob stays connected while he is revoked: the broker cuts him off and refuses him again.
  const bobLive = await OperatorClient.connect(await readOperatorConfig(bobCli.env.MWAY_CONFIG_DIR));
  t.teardown(() => bobLive.close());
  const rev = await cli('mway', ['keys', 'revoke', ...R, '--cert', bob.certPath, '--crl', crl]);
  t.is(rev.exitCode, 0, rev.stderr);
  await until('the broker reloaded its CRL', () =>
    broker.lines.some((l) =>
      /CRLs reloaded \(file changed\): 1 list\(s\), 1 revoked; disconnected operator:bob/.test(l),
    ),
  );
  await bobLive.client.closed;
  const refused = await bobCli.run('status', '--group', 'web');
  t.is(refused.exitCode, 1);
  t.regex(refused.stderr, /E_IDENTITY_REVOKED/);

  // A broker that lags (or lies) can still relay bob's signature: the peer is what must know.
  const adminLive = await OperatorClient.connect(await readOperatorConfig(admin.env.MWAY_CONFIG_DIR));
  t.teardown(() => adminLive.close());
  const bobKey = await readPrivateKey(bob.keyPath);
  const bobChain = await readCertificates(bob.certPath);
  const asBob = async (): Promise<string> => {
    const command = buildCommand({
      action: 'status',
      audience: { fleet: 'prod', target: 'group:web', groups: ['web'], peers: ['p1'] },
      seq: await nextOperatorSeq(bobCli.env.MWAY_CONFIG_DIR, bobChain[0]?.fingerprint ?? ''),
      key: bobKey,
      chain: bobChain,
    });
    const id = (command.payload as { id: string; expiresAt: string }).id;
    await adminLive.client.request('command-submit', {
      jobId: id,
      command,
      targets: ['p1'],
      expiresAt: (command.payload as { expiresAt: string }).expiresAt,
      watch: true,
    });
    const [r] = await adminLive.collect(id, envelopeDigest(command), ['p1'], { timeoutMs: 20_000 });
    return r?.code === undefined ? (r?.outcome ?? 'none') : `${r.outcome} ${r.code}`;
  };
  t.is(await asBob(), 'ok', 'the peer has no CRL yet');

  const push = await admin.run('crl', 'push', crl, '--group', 'web', '--json', '--static');
  t.is(push.exitCode, 0, push.stdout + push.stderr);
  const out = (jsonOut(push.stdout) as { peers: Array<{ output: { state: string; serials: number } }> })
    .peers[0]?.output;
  t.like(out, { state: 'installed', serials: 1 });
  t.is(await asBob(), 'refused E_CMD_OPERATOR_REVOKED');
  t.is((await readdir(join(state, 'control', 'crls'))).filter((f) => f.endsWith('.crl')).length, 1);

  // Older than the one in force: refused, the newer one stays.
  const stale = await admin.run('crl', 'push', emptyCrl, '--peer', 'p1');
  t.is(stale.exitCode, 1);
  t.regex(stale.stdout, /p1\s+failed\s+E_CRL_STALE/);
  const again = await admin.run('crl', 'push', crl, '--peer', 'p1', '--json', '--static');
  t.like((jsonOut(again.stdout) as { peers: Array<{ output: unknown }> }).peers[0]?.output, {
    state: 'unchanged',
  });

  // It survives a restart of the agent's link (kept on the data partition, not in memory).
  await link.stop();
  link = await startPeerLink({ api: recorder().api, stateDir: state, log: () => {}, config: peerConfig });
  await until('p1 back', () => link.connected);
  t.is(await asBob(), 'refused E_CMD_OPERATOR_REVOKED');

  // A file that does not verify is not put in force: the broker keeps refusing bob.
  await writeFile(crl, 'not a CRL\n');
  await until('the broker refused the damaged file', () =>
    broker.lines.some((l) => /cannot reload CRLs \(file changed\), keeping the previous ones/.test(l)),
  );
  t.regex((await bobCli.run('status', '--group', 'web')).stderr, /E_IDENTITY_REVOKED/);
});

// The peer issuer's side of revocation (doc/certificate-profile.md, "CRLs"): its CRL names no
// anchor and travels with its chain; the running broker and the peers accept it through that
// chain to the root they hold, the peers before the broker when it is pushed first.
test("a peer the peer issuer certified is revoked by the peer issuer's CRL: peers refuse for it after mway crl push, the broker cuts it off on reload", async (t) => {
  const p = await pkiP;
  const dir = await tempDir(t);
  const I = ['--issuer-key', p.peerIssuer.keyPath, '--issuer-cert', p.peerIssuer.certPath];
  const crl = join(dir, 'peer-issuer.crl');
  const made = await cli('mway', ['keys', 'crl', ...I, '--crl', crl]);
  t.is(made.exitCode, 0, made.stderr);
  const issued = async (name: string) =>
    newIdentity({
      role: 'peer',
      name,
      peerId: name,
      outDir: join(dir, 'ids'),
      issuerKey: p.peerIssuer.key,
      issuerCert: p.peerIssuer.cert,
    });
  const [pa, pb] = [await issued('pa'), await issued('pb')];
  t.deepEqual(
    (await readCertificates(pa.certPath)).map((c) => c.role),
    ['peer', 'peer-issuer'],
  );
  const config = join(dir, 'broker.json');
  await writeFile(
    config,
    JSON.stringify({
      listen: '127.0.0.1:0',
      key: p.broker.keyPath,
      certificate: p.broker.certPath,
      anchors: [p.root.certPath],
      crls: [crl],
      database: join(dir, 'broker.db'),
      mdns: { enabled: false },
    }),
  );
  const broker = await startBroker(t, config);
  const recs = { pa: recorder(), pb: recorder() };
  const linkOf = (id: typeof pa, rec: ReturnType<typeof recorder>, name: 'pa' | 'pb') =>
    startPeerLink({
      api: rec.api,
      stateDir: join(dir, name),
      log: () => {},
      config: {
        broker: broker.address,
        fleet: 'prod',
        key: id.keyPath,
        cert: id.certPath,
        ...(id.kemKeyPath === undefined ? {} : { kemKey: id.kemKeyPath }),
        anchors: [p.root.certPath],
        maxBackoffMs: 300,
      },
    });
  const la = await linkOf(pa, recs.pa, 'pa');
  t.teardown(() => la.stop());
  let lb = await linkOf(pb, recs.pb, 'pb');
  t.teardown(() => lb.stop());
  await until('both linked through the peer issuer', () => la.connected && lb.connected);

  const env = { MWAY_CONFIG_DIR: join(dir, 'mway-admin') };
  const init = await cli(
    'mway',
    [
      'config',
      'init',
      '--broker',
      broker.address,
      '--fleet',
      'prod',
      '--key',
      p.admin.keyPath,
      '--cert',
      p.admin.certPath,
      '--anchor',
      p.root.certPath,
    ],
    { env },
  );
  t.is(init.exitCode, 0, init.stderr);
  const admin = (...a: string[]) => cli('mway', a, { env, timeout: 60_000 });
  t.is((await admin('group', 'create', 'web')).exitCode, 0);
  const add = await admin('group', 'add', 'web', 'pa', 'pb');
  t.is(add.exitCode, 0, add.stdout + add.stderr);
  // The broker hands out each peer's certificate with its issuer, so mway can trust it from the
  // root (sealing a secret needs that); their signed results verify here through it too.
  const listed = jsonOut((await admin('peers', '--json')).stdout) as Array<{
    peerId: string;
    trusted: boolean;
  }>;
  t.deepEqual(
    listed.map((x) => [x.peerId, x.trusted]),
    [
      ['pa', true],
      ['pb', true],
    ],
  );
  const ok = await admin('service', '--group', 'web', 'restart', 'hello');
  t.is(ok.exitCode, 0, ok.stdout + ok.stderr);
  t.regex(ok.stdout, /2 targeted, 2 succeeded/);

  // Revoke pa into a copy the broker does not read yet, and push that to the peers first.
  const next = join(dir, 'peer-issuer-next.crl');
  await copyFile(crl, next);
  const rev = await cli('mway', ['keys', 'revoke', ...I, '--cert', pa.certPath, '--crl', next]);
  t.is(rev.exitCode, 0, rev.stderr);
  const push = await admin('crl', 'push', next, '--group', 'web', '--json', '--static');
  t.is(push.exitCode, 0, push.stdout + push.stderr);
  for (const r of (jsonOut(push.stdout) as { peers: Array<{ output: unknown }> }).peers)
    t.like(r.output, { state: 'installed', serials: 1, issuer: 'CN=peer-issuer, O=MilkyWay peer-issuer' });
  // pa holds a CRL that revokes pa: it refuses every command (its own chain is checked with it).
  const after = await admin('service', '--group', 'web', 'restart', 'hello');
  t.is(after.exitCode, 1, after.stdout + after.stderr);
  t.regex(after.stdout, /pa\s+refused\s+E_CMD_PEER_REVOKED/);
  t.regex(after.stdout, /pb\s+ok/);
  t.deepEqual(recs.pa.calls, ['restart hello']);
  t.deepEqual(recs.pb.calls, ['restart hello', 'restart hello']);

  // The stored copy carries the chain, and a restarted link reads it back through it.
  const stored = (await readdir(join(dir, 'pb', 'control', 'crls'))).filter((f) => f.endsWith('.crl'));
  t.is(stored.length, 1);
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(join(dir, 'pb', 'control', 'crls', stored[0] as string), 'utf8');
  t.is(text.match(/-----BEGIN CERTIFICATE-----/g)?.length, 2, 'the peer issuer and the root');
  await lb.stop();
  lb = await linkOf(pb, recs.pb, 'pb');
  await until('pb back with the stored CRL', () => lb.connected);

  // The broker's file gets the revocation: reloaded without a restart, pa is cut off.
  await copyFile(next, crl);
  await until('the broker reloaded the peer issuer CRL', () =>
    broker.lines.some((l) =>
      /CRLs reloaded \(file changed\): 1 list\(s\), 1 revoked; disconnected peer:pa/.test(l),
    ),
  );
  const peers = jsonOut((await admin('peers', '--json')).stdout) as Array<{
    peerId: string;
    online: boolean;
  }>;
  t.like(Object.fromEntries(peers.map((x) => [x.peerId, x.online])), { pa: false, pb: true });
  await new Promise((r) => setTimeout(r, 1500));
  t.false(la.connected, 'pa stays out: its reconnects are refused');
  t.true(broker.lines.some((l) => /E_IDENTITY_REVOKED|revoked/.test(l)));

  // A CRL without its chain names no known issuer: refused before anything is sent.
  const bare = join(dir, 'bare.crl');
  await writeFile(bare, (await readFile(next, 'utf8')).split('-----BEGIN CERTIFICATE-----')[0] as string);
  const refused = await admin('crl', 'push', bare, '--group', 'web');
  t.is(refused.exitCode, 1);
  t.regex(refused.stderr, /E_CRL_ISSUER_UNKNOWN/);
});
