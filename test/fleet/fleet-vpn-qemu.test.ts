// QEMU TEST (SLOW GROUP: two TCG guests at once, then a reboot; run with `npm run test:slow`,
// which sets MWAY_SLOW_TESTS=1, under both QEMU slots). `mway vpn` end to end (doc/vpn.md): one
// image with the vpn module (scripts/pack-vpn-module.sh) and `coreos.kernelModules:
// ["wireguard"]`, SELinux enforcing; two guests enrolled from cloud-init seeds (hub1, spoke1),
// each with QEMU's user network (the broker on the host's loopback as 10.0.2.2) and a second
// card on one QEMU socket network (192.168.77.0/24). `mway vpn create` makes hub1 the hub and
// adds spoke1 with the hub's endpoint in that network from its signed facts; spoke1 pings the
// hub across the tunnel by the module's `ping` action; `mway vpn status` shows the handshake
// WireGuard itself reports (`wg show dump`); after `mway reboot` of spoke1 its restore service
// brings the tunnel back from the module's private data, and the ping goes through again.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { buildImage } from '../../imagebuild/build-image.ts';
import { loadImageKeys } from '../../imagebuild/dev-keys.ts';
import { loadImageSpec } from '../../imagebuild/image-spec.ts';
import { newIdentity, newSecureBootKeys, readCertificates, readPrivateKey } from '../../keys/index.ts';
import { cli, freePort, jsonOut, ROOT, tempDir } from '../helpers.ts';
import { bootGuest, startBroker } from './_qemu-guest.ts';

const RUN_MS = 40 * 60_000;
const slow = process.env.MWAY_SLOW_TESTS === '1' ? test.serial : test.serial.skip;

interface Report {
  peers: Array<{
    peer: string;
    outcome: string;
    code?: string;
    output?: { result?: unknown; stderr?: string };
  }>;
}
interface StatusRow {
  peer: string;
  vpn: {
    role: string;
    address: string;
    up: boolean;
    peers: Array<{ peer: string; latestHandshake?: string | null }>;
  };
}

async function seed(dir: string, name: string, eth1: string, broker: string, token: string): Promise<string> {
  const src = join(dir, `seed-${name}`);
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'meta-data'), `instance-id: ${name}\nlocal-hostname: ${name}\n`);
  await writeFile(
    join(src, 'network-config'),
    `version: 2\nethernets:\n  eth0:\n    addresses: [10.0.2.15/24]\n    gateway4: 10.0.2.2\n  eth1:\n    addresses: [${eth1}]\n`,
  );
  const indented = token
    .trim()
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
  await writeFile(
    join(src, 'user-data'),
    `#cloud-config\nmilkyway:\n  broker: ${broker}\n  token: |\n${indented}\n`,
  );
  const out = join(dir, `${name}.iso`);
  await execa('genisoimage', ['-quiet', '-output', out, '-volid', 'cidata', '-joliet', '-rock', src], {
    timeout: 30_000,
  });
  return out;
}

slow(
  'QEMU: mway vpn makes a WireGuard hub and spoke of two guests; ping across, handshake in status, back after a reboot',
  async (t) => {
    t.timeout(RUN_MS);
    const t0 = Date.now();
    const dir = await tempDir(t, 'mway-vpn-qemu-');
    const keysDir = join(dir, 'keys');
    await loadImageKeys(keysDir, { generate: true });
    await newSecureBootKeys({ dir: keysDir, kind: 'user', name: 'user' });
    await newSecureBootKeys({ dir: keysDir, kind: 'vendor', name: 'vendor' });
    const rootKey = await readPrivateKey(join(keysDir, 'user-root.key'));
    const [rootCert] = await readCertificates(join(keysDir, 'user-root.crt'));
    if (rootCert === undefined) return t.fail('no user root');
    const under = { issuerKey: rootKey, issuerCert: rootCert };
    const broker = await newIdentity({
      ...under,
      role: 'broker',
      name: 'broker',
      dnsNames: ['localhost'],
      outDir: join(dir, 'broker'),
    });
    const op = await newIdentity({
      ...under,
      role: 'operator',
      name: 'netop',
      groups: ['*'],
      actions: ['*', 'module:vpn'],
      outDir: join(dir, 'operator'),
    });
    // Machines are accepted with the peer issuer's key, so the user root stays offline.
    const issuer = await newIdentity({
      ...under,
      role: 'peer-issuer',
      name: 'peer-issuer',
      outDir: join(dir, 'issuer'),
    });
    const mwl = join(dir, 'vpn.mwl');
    const pack = await execa(
      join(ROOT, 'scripts', 'pack-vpn-module.sh'),
      ['--key', join(keysDir, 'user.key'), '--cert', join(keysDir, 'user.crt'), '-o', mwl],
      { timeout: 300_000, reject: false },
    );
    t.is(pack.exitCode, 0, pack.stderr);

    const spec = join(dir, 'image.json');
    await writeFile(
      spec,
      JSON.stringify({
        name: 'milkyway',
        version: '1.0.0',
        kernel: { package: 'linux-image-amd64' },
        coreos: { kernelModules: ['wireguard'] },
        layers: [mwl],
        keys: { dir: keysDir },
        secureConfig: { groups: {}, allowLayers: ['vpn'] },
        agent: {
          control: {
            fleet: 'qemu',
            anchors: ['/certs'],
            crls: ['/certs'],
            enroll: { dir: '/data/identity', pollMs: 2000 },
            maxBackoffMs: 3000,
            statusIntervalMs: 10_000,
          },
          nocloud: {},
        },
        partitions: { esp: 64, layers: 64, data: 64 },
      }),
    );
    const built = await buildImage({
      spec: await loadImageSpec(spec),
      outDir: join(dir, 'out'),
      sourceDateEpoch: 1_700_000_000,
    });
    t.log(`image built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const port = await freePort();
    const brokerConfig = join(dir, 'broker.json');
    await writeFile(
      brokerConfig,
      JSON.stringify({
        listen: `127.0.0.1:${port}`,
        key: broker.keyPath,
        certificate: broker.certPath,
        anchors: [join(keysDir, 'user-root.crt')],
        database: join(dir, 'broker.db'),
        mdns: { enabled: false },
      }),
    );
    const srv = await startBroker(t, brokerConfig, RUN_MS);
    const env = { MWAY_CONFIG_DIR: join(dir, 'mway') };
    const mway = (...args: string[]) => cli('mway', args, { env, timeout: 900_000 });
    const init = await mway(
      'config',
      'init',
      '--broker',
      `127.0.0.1:${port}`,
      '--fleet',
      'qemu',
      '--anchor',
      join(keysDir, 'user-root.crt'),
      '--key',
      op.keyPath,
      '--cert',
      op.certPath,
    );
    t.is(init.exitCode, 0, init.stderr);
    t.is((await mway('group', 'create', 'lab')).exitCode, 0);
    const tokenFile = join(dir, 'lab.token');
    const tok = await mway(
      'peers',
      'token',
      'create',
      '--group',
      'lab',
      '--uses',
      '2',
      '--expires',
      '2h',
      '-o',
      tokenFile,
    );
    t.is(tok.exitCode, 0, tok.stderr);
    const token = await (await import('node:fs/promises')).readFile(tokenFile, 'utf8');
    const brokerInGuest = `10.0.2.2:${port}`;
    const hubSeed = await seed(dir, 'hub1', '192.168.77.1/24', brokerInGuest, token);
    const spokeSeed = await seed(dir, 'spoke1', '192.168.77.2/24', brokerInGuest, token);

    // One segment: hub1's QEMU listens on a loopback port, spoke1's connects to it.
    const seg = await freePort();
    const hub = bootGuest(t, built.disk, {
      timeoutMs: RUN_MS,
      seed: hubSeed,
      log: join(dir, 'hub1.console'),
      waitMs: 15 * 60_000,
      nics: [{ netdev: `socket,listen=127.0.0.1:${seg}`, mac: '52:54:00:77:00:01' }],
    });
    await hub.started;
    await new Promise((r) => setTimeout(r, 2000));
    const spoke = bootGuest(t, built.disk, {
      timeoutMs: RUN_MS,
      seed: spokeSeed,
      log: join(dir, 'spoke1.console'),
      waitMs: 15 * 60_000,
      nics: [{ netdev: `socket,connect=127.0.0.1:${seg}`, mac: '52:54:00:77:00:02' }],
    });
    await spoke.started;
    const consoles = () =>
      `hub1:\n${hub.lines.slice(-30).join('\n')}\nspoke1:\n${spoke.lines.slice(-30).join('\n')}\nbroker:\n${srv.lines.slice(-10).join('\n')}`;
    const t1 = Date.now();

    const pending = await mway('peers', 'pending', '--wait', '2', '--timeout', '900');
    t.is(pending.exitCode, 0, pending.stdout + pending.stderr + consoles());
    const auto = await mway(
      'peers',
      'autosign',
      '--issuer-key',
      issuer.keyPath,
      '--issuer-cert',
      issuer.certPath,
    );
    t.is(auto.exitCode, 0, auto.stdout + auto.stderr);
    const online = await mway('peers', '--wait', '2', '--timeout', '600');
    t.is(online.exitCode, 0, online.stdout + online.stderr + consoles());
    t.log(`both guests enrolled and online ${((Date.now() - t1) / 1000).toFixed(1)} s after QEMU started`);
    for (let i = 0; i < 60; i++) {
      const l = await mway('module', 'list', '--json');
      const m = l.exitCode === 0 ? (jsonOut(l.stdout) as Array<{ name: string; peers: string[] }>) : [];
      if (m[0]?.peers.length === 2) break;
      await new Promise((r) => setTimeout(r, 5000));
    }

    const created = await mway(
      'vpn',
      'create',
      'lab',
      '--hub',
      'hub1',
      '--network',
      '10.10.0.0/24',
      '--peer',
      'spoke1',
      '--endpoint-net',
      '192.168.77.0/24',
      '--keepalive',
      '5',
      '--timeout',
      '300',
      '--json',
    );
    t.is(created.exitCode, 0, created.stdout + created.stderr + consoles());
    if (created.exitCode !== 0) return;
    t.like(jsonOut(created.stdout), {
      hub: { peer: 'hub1', address: '10.10.0.1/24', endpoint: '192.168.77.1:51820' },
      peers: [{ peer: 'spoke1', address: '10.10.0.2/24' }],
    });

    // Across the tunnel: spoke1 pings the hub's tunnel address (the first packets start the handshake).
    const ping = async (): Promise<number> => {
      const r = await mway(
        'module',
        'run',
        'vpn',
        'ping',
        '--peer',
        'spoke1',
        '--arg',
        'address=10.10.0.1',
        '--arg',
        'count=5',
        '--timeout',
        '300',
        '--json',
        '--static',
      );
      const out = (jsonOut(r.stdout || '{"ok":true,"result":{"peers":[]}}') as Report).peers[0];
      return (out?.output?.result as { received?: number } | undefined)?.received ?? 0;
    };
    let received = 0;
    for (let i = 0; i < 3 && received === 0; i++) received = await ping();
    t.true(received > 0, `no reply across the tunnel\n${consoles()}`);
    const statusRows = async (): Promise<StatusRow[]> => {
      const r = await mway('vpn', 'status', 'lab', '--timeout', '300', '--json');
      t.is(r.exitCode, 0, r.stdout + r.stderr);
      return jsonOut(r.stdout) as StatusRow[];
    };
    const rows = await statusRows();
    t.deepEqual(
      rows.map((r) => [r.peer, r.vpn.role, r.vpn.address, r.vpn.up]),
      [
        ['hub1', 'hub', '10.10.0.1/24', true],
        ['spoke1', 'spoke', '10.10.0.2/24', true],
      ],
    );
    const handshake = rows[0]?.vpn.peers.find((p) => p.peer === 'spoke1')?.latestHandshake;
    t.regex(handshake ?? '', /^\d{4}-\d\d-\d\dT/, 'the hub saw a handshake with spoke1');
    t.truthy(rows[1]?.vpn.peers[0]?.latestHandshake, 'spoke1 saw a handshake with the hub');
    const human = await mway('vpn', 'status', 'lab', '--timeout', '300');
    t.regex(human.stdout, /^lab {2}hub1 {2}hub {2}10\.10\.0\.1\/24 {2}yes {2}spoke1 \d+ s ago$/m);

    // Enforcing, and no denial on either guest from all that.
    const st = await mway('status', '--peer', 'hub1,spoke1', '--timeout', '300', '--json', '--static');
    const agents = (
      jsonOut(st.stdout) as {
        peers: Array<{ peer: string; output: { agent: { selinux: { mode: string; denials: number } } } }>;
      }
    ).peers;
    t.deepEqual(
      agents.map((p) => [p.peer, p.output.agent.selinux.mode, p.output.agent.selinux.denials]),
      [
        ['hub1', 'enforcing', 0],
        ['spoke1', 'enforcing', 0],
      ],
      consoles(),
    );

    // Reboot of the spoke: its restore service brings the tunnel back from the module's data.
    const mark = spoke.lines.length;
    const t2 = Date.now();
    const reboot = await mway('reboot', '--peer', 'spoke1', '--timeout', '300', '--json', '--static');
    t.is(reboot.exitCode, 0, reboot.stdout + reboot.stderr);
    t.truthy(await spoke.until(/shutdown done \(reboot\)/, mark), consoles());
    t.truthy(await spoke.until(/control: connected to broker 10\.0\.2\.2:\d+ as spoke1/, mark), consoles());
    t.truthy(await spoke.until(/boot done:/, mark), consoles());
    t.log(`spoke1 rebooted and reconnected in ${((Date.now() - t2) / 1000).toFixed(1)} s`);
    received = 0;
    for (let i = 0; i < 5 && received === 0; i++) received = await ping();
    t.true(received > 0, `no reply across the tunnel after the reboot\n${consoles()}`);
    const after = await statusRows();
    const again = after.find((r) => r.peer === 'spoke1');
    t.true(again?.vpn.up, 'the tunnel is up again on spoke1');
    t.true(
      Date.parse(again?.vpn.peers[0]?.latestHandshake ?? '0') >= t2 - 60_000,
      'a handshake after the reboot (guest clocks within a minute)',
    );

    // Revocation on the live hub: spoke1's key leaves hub1's interface, spoke1's link is deleted.
    const removed = await mway('vpn', 'remove', 'lab', '--peer', 'spoke1', '--timeout', '300', '--json');
    t.is(removed.exitCode, 0, removed.stdout + removed.stderr);
    const left = await statusRows();
    t.deepEqual(
      left.map((r) => [r.peer, r.vpn.role, r.vpn.up, r.vpn.peers.map((p) => p.peer)]),
      [['hub1', 'hub', true, []]],
    );
    t.is(await ping(), 0, 'no tunnel from spoke1 any more');
    t.log(`whole run ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  },
);
