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
import { BINS, cli, tempDir, until } from '../helpers.ts';

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
        resolve((JSON.parse(buf.split('\n')[0] as string) as { listening: string }).listening);
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
  const out = (JSON.parse(push.stdout) as { peers: Array<{ output: { state: string; serials: number } }> })
    .peers[0]?.output;
  t.like(out, { state: 'installed', serials: 1 });
  t.is(await asBob(), 'refused E_CMD_OPERATOR_REVOKED');
  t.is((await readdir(join(state, 'control', 'crls'))).filter((f) => f.endsWith('.crl')).length, 1);

  // Older than the one in force: refused, the newer one stays.
  const stale = await admin.run('crl', 'push', emptyCrl, '--peer', 'p1');
  t.is(stale.exitCode, 1);
  t.regex(stale.stdout, /p1\s+failed\s+E_CRL_STALE/);
  const again = await admin.run('crl', 'push', crl, '--peer', 'p1', '--json', '--static');
  t.like((JSON.parse(again.stdout) as { peers: Array<{ output: unknown }> }).peers[0]?.output, {
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
