// `mway update` with REAL agents on the host (namespace mode, each PID 1 of its own PID and
// mount namespace, each with a disk image of its own): the bundle travels as signed
// coreos.chunk pieces through the real broker, each agent verifies it, writes only slot B of
// its disk, verifies it as written and arms one trial (--no-reboot: no reboot); `mway update
// status --group` shows it; an older version and a bundle of another vendor are refused by
// every peer with their codes. The boots after that are test/agent/core/coreos-update.test.ts
// (host) and test/update/ab-update-qemu.test.ts (QEMU).
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { Broker } from '../../control/broker/broker.ts';
import { newIdentity, tlsContextOptions } from '../../keys/index.ts';
import { readDiskSlots } from '../../update/index.ts';
import { makeRoot, startAgent } from '../agent/_namespace.ts';
import { makeFleetPki } from '../control/command-fixture.ts';
import { cli, jsonOut, tempDir, until } from '../helpers.ts';
import { devKeys, makeBundle, makeCoreos, makeSlotDisk } from '../update/_slot-disk.ts';

test('mway update --group web BUNDLE --no-reboot: every agent writes and arms slot B; refusals per peer', async (t) => {
  const p = await makeFleetPki();
  const dir = await tempDir(t, 'mway-fleet-update-');
  const vendor = await devKeys(join(dir, 'vendor'));
  const v1 = await makeCoreos(dir, vendor, { version: '1.0' });
  const v2 = await makeCoreos(dir, vendor, { version: '2.0' });
  const bundle = (await makeBundle(dir, vendor, v2, { version: '2.0', rollbackIndex: 2 })).path;
  const older = (
    await makeBundle(dir, vendor, await makeCoreos(dir, vendor, { version: '0.9' }), {
      version: '0.9',
      rollbackIndex: 3,
    })
  ).path;
  const other = await devKeys(join(dir, 'other'));
  const foreign = (
    await makeBundle(dir, other, await makeCoreos(dir, other, { version: '2.1' }), {
      version: '2.1',
      rollbackIndex: 2,
    })
  ).path;
  const disk = await makeSlotDisk(dir, v1, '1.0');

  const broker = await Broker.start({
    dbPath: join(dir, 'broker.sqlite'),
    tls: tlsContextOptions({
      keyPath: p.broker.keyPath,
      certPath: p.broker.certPath,
      anchors: [p.root.cert],
    }),
    certificate: p.broker.cert,
    anchors: [p.root.cert],
    crls: [p.crl],
  });
  t.teardown(() => broker.close());
  const address = `127.0.0.1:${broker.port}`;
  const user = await newIdentity({
    role: 'user',
    name: 'user',
    outDir: join(dir, 'user'),
    issuerKey: p.root.key,
    issuerCert: p.root.cert,
  });
  const agentPki = { dir, rootCert: p.root.certPath, userKeyPath: user.keyPath, userCertPath: user.certPath };
  const roots: string[] = [];
  for (const id of [p.p1, p.p2]) {
    const r = await makeRoot(t, agentPki, {
      config: {
        control: {
          broker: address,
          fleet: 'prod',
          key: `/base${id.keyPath}`,
          cert: `/base${id.certPath}`,
          kemKey: `/base${id.kemKeyPath}`,
          anchors: ['/certs'],
          maxBackoffMs: 500,
          statusIntervalMs: 2000,
        },
        update: {
          disk: '/disk.img',
          rootHash: v1.rootHash,
          stateFile: '/data/update.json',
          readyWithinMs: 5000,
          graceMs: 100,
        },
      },
    });
    // The vendor root is a trust anchor of the machine, as on the certificate partition.
    await copyFile(join(dir, 'vendor', 'keys', 'vendor-root.crt'), join(r.root, 'certs', 'vendor-root.crt'));
    await copyFile(disk, join(r.root, 'disk.img'));
    const a = startAgent(t, r);
    await a.waitFor(/peer link started/);
    roots.push(r.root);
  }
  await until('both agents connected', () => broker.peers.has('p1') && broker.peers.has('p2'));
  const env = { MWAY_CONFIG_DIR: join(dir, 'mway') };
  const mway = (...args: string[]) => cli('mway', args, { env, timeout: 120_000 });
  const crlPath = join(dir, 'root.crl');
  const { crlPem } = await import('../../keys/index.ts');
  await writeFile(crlPath, crlPem(p.crl));
  const base = ['--broker', address, '--fleet', 'prod', '--anchor', p.root.certPath, '--crl', crlPath];
  t.is(
    (await mway('config', 'init', ...base, '--key', p.admin.keyPath, '--cert', p.admin.certPath)).exitCode,
    0,
  );
  t.is((await mway('group', 'create', 'web')).exitCode, 0);
  t.is((await mway('group', 'add', 'web', 'p1', 'p2')).exitCode, 0);
  await until('memberships held', async () => {
    const rows = jsonOut((await mway('status', '--json')).stdout) as Array<{ groups?: string[] }>;
    return rows.length === 2 && rows.every((x) => x.groups?.includes('web'));
  });

  const before = await mway('update', 'status', '--group', 'web');
  t.is(before.exitCode, 0, before.stdout + before.stderr);
  t.regex(
    before.stdout,
    /p1: running a {2}a\* 1\.0 \(good, priority 2\) {2}b - \(empty, priority 0\) {2}rollback floor 0/,
  );

  const up = await mway('update', '--group', 'web', bundle, '--no-reboot', '--json', '--static');
  t.is(up.exitCode, 0, up.stdout + up.stderr);
  const r = jsonOut(up.stdout) as {
    peers: Array<{
      peer: string;
      outcome: string;
      output: { slot: string; version: string; rebooting: boolean };
    }>;
  };
  t.deepEqual(
    r.peers.map((x) => [x.peer, x.outcome, x.output.slot, x.output.version, x.output.rebooting]),
    [
      ['p1', 'ok', 'b', '2.0', false],
      ['p2', 'ok', 'b', '2.0', false],
    ],
  );
  for (const root of roots) {
    const slots = await readDiskSlots(join(root, 'disk.img'));
    t.is(slots.b.label, 'milkyway_2.0');
    t.deepEqual(slots.b.state, { priority: 2, tries: 1, successful: false });
    t.deepEqual(slots.a.state, { priority: 1, tries: 0, successful: true });
  }
  const armed = await mway('update', 'status', '--group', 'web');
  t.regex(armed.stdout, /p2: running a .*b 2\.0 \(trial, 1 tries, priority 2\)/);
  t.regex(armed.stdout, /armed: 2\.0 in slot b/);

  for (const [file, code] of [
    [older, 'E_BUNDLE_DOWNGRADE'],
    [foreign, 'E_BUNDLE_SIGNATURE'],
  ] as const) {
    const no = await mway('update', '--group', 'web', file, '--no-reboot', '--json', '--static');
    t.is(no.exitCode, 1, no.stdout + no.stderr);
    const j = jsonOut(no.stdout) as { action: string; peers: Array<{ outcome: string; code?: string }> };
    t.deepEqual(
      j.peers.map((x) => x.code),
      [code, code],
    );
    // Refused on the first piece: the signed manifest rides in it, the rest is never sent.
    t.is(j.action, 'coreos.chunk');
  }
});
