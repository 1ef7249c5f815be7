// `mway vpn` on the host (doc/vpn.md): two real agents, each PID 1 of its own PID and mount
// namespace, on the real broker at 127.0.0.1, both holding the vpn module as
// scripts/pack-vpn-module.sh packs it (Debian's wg inside, user-signed). The host kernel has
// no WireGuard, so the VPN is made with --no-up (stored, brought up at boot) and the tunnel
// itself is the QEMU test's (fleet-vpn-qemu.test.ts). Checked here: each peer's private key
// stays on it (Debian's `wg pubkey` and Node's X25519 both derive the public key each peer
// signed from the key it stored; no answer and no byte of the broker's database holds a
// private key), the rendered wg(8) config reads back unchanged through Debian's
// `wg-quick strip`, addresses in peer-id order, the endpoint from the hub's signed facts,
// revocation on the hub, and bad flags refused before anything is signed.
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { allocate, hubEndpoint, parseNet, tunnelNet } from '../../control/operator/cli/vpn-plan.ts';
import { newIdentity } from '../../keys/index.ts';
import { makeRoot, startAgent } from '../agent/_namespace.ts';
import { makeFleetPki } from '../control/command-fixture.ts';
import { cli, jsonOut, until } from '../helpers.ts';
import { startFleet } from './_fleet.ts';

const REPO = join(import.meta.dirname, '..', '..');
const pkiP = makeFleetPki();

test('vpn-plan: addresses in peer-id order, the endpoint from facts, networks checked', (t) => {
  const n = tunnelNet('10.10.0.0/24');
  t.deepEqual(
    [...allocate(n, ['p10', 'p2', 'p1'], new Set([1]))],
    [
      ['p1', '10.10.0.2/24'],
      ['p10', '10.10.0.3/24'],
      ['p2', '10.10.0.4/24'],
    ],
  );
  t.deepEqual(
    [...allocate(n, ['b', 'a'], new Set([1, 2, 4]))],
    [
      ['a', '10.10.0.3/24'],
      ['b', '10.10.0.5/24'],
    ],
  );
  t.throws(() => allocate(tunnelNet('10.9.0.0/30'), ['a', 'b'], new Set([1])), {
    message: /no address left for b/,
  });
  t.throws(() => tunnelNet('10.10.0.1/24'), { message: /host bits set: the network is 10\.10\.0\.0\/24/ });
  t.throws(() => tunnelNet('10.10.0.0/31'), { message: /no room/ });
  t.throws(() => parseNet('300.1.1.0/24', '--route'), {
    message: /--route "300\.1\.1\.0\/24" is not an IPv4 network/,
  });
  const facts = {
    addresses: { lo: ['127.0.0.1'], wg0: ['10.10.0.1'], eth1: ['192.168.77.1'], eth0: ['10.0.2.15'] },
  };
  t.is(
    hubEndpoint({ hub: 'h', facts, tunnel: n, port: 51820 }),
    '10.0.2.15:51820',
    'interfaces in name order',
  );
  t.is(
    hubEndpoint({ hub: 'h', facts, tunnel: n, port: 51820, endpointNet: '192.168.77.0/24' }),
    '192.168.77.1:51820',
  );
  t.is(
    hubEndpoint({ hub: 'h', facts, tunnel: n, port: 51820, endpoint: '198.51.100.7:4000' }),
    '198.51.100.7:4000',
  );
  t.throws(() => hubEndpoint({ hub: 'h', facts: { addresses: { lo: ['127.0.0.1'] } }, tunnel: n, port: 1 }), {
    message: /hold no IPv4 address/,
  });
});

/** Debian's wireguard-tools unpacked (the .deb pack-vpn-module.sh fetched): wg and wg-quick. */
async function wireguardTools(dir: string): Promise<{ wg: string; wgQuick: string }> {
  const debs = join(REPO, '.cache', 'debs');
  const deb = (await readdir(debs))
    .filter((f) => /^wireguard-tools_.*_amd64\.deb$/.test(f))
    .sort()
    .pop();
  if (deb === undefined) throw new Error('pack-vpn-module.sh left no wireguard-tools .deb');
  await execa('dpkg-deb', ['-x', join(debs, deb), join(dir, 'wgtools')], { timeout: 60_000 });
  return { wg: join(dir, 'wgtools/usr/bin/wg'), wgQuick: join(dir, 'wgtools/usr/bin/wg-quick') };
}

/** The X25519 public key of a WireGuard private key (base64), by Node's own crypto. */
function x25519Public(privateB64: string): string {
  // PKCS#8 prefix for an X25519 private key (RFC 8410).
  const der = Buffer.concat([
    Buffer.from('302e020100300506032b656e04220420', 'hex'),
    Buffer.from(privateB64, 'base64'),
  ]);
  const pub = createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
  return (pub.export({ format: 'der', type: 'spki' }) as Buffer).subarray(-32).toString('base64');
}

test('mway vpn: keys stay on their peers, public keys travel signed, the config is what wg reads', async (t) => {
  const p = await pkiP;
  // The broker's database is dir/broker.sqlite, searched for private keys at the end.
  const { dir, address } = await startFleet(t, p);
  const under = { issuerKey: p.root.key, issuerCert: p.root.cert };
  const user = await newIdentity({ ...under, role: 'user', name: 'user', outDir: join(dir, 'user') });
  const mwl = join(dir, 'vpn.mwl');
  const pack = await execa(
    join(REPO, 'scripts', 'pack-vpn-module.sh'),
    ['--key', user.keyPath, '--cert', user.certPath, '-o', mwl],
    { timeout: 300_000, reject: false },
  );
  t.is(pack.exitCode, 0, pack.stderr);
  const tools = await wireguardTools(dir);

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
          statusIntervalMs: 1000,
        },
      },
    });
    await writeFile(join(r.root, 'layers', 'vpn.mwl'), await readFile(mwl));
    const a = startAgent(t, r);
    await a.waitFor(/peer link started/);
    roots.push(r.root);
  }
  const op = await newIdentity({
    ...under,
    role: 'operator',
    name: 'netop',
    groups: ['*'],
    actions: ['status', 'group', 'module:vpn'],
    outDir: join(dir, 'netop'),
  });
  const env = { MWAY_CONFIG_DIR: join(dir, 'mway') };
  const answers: string[] = [];
  const mway = async (...args: string[]) => {
    const r = await cli('mway', args, { env, timeout: 120_000 });
    answers.push(r.stdout, r.stderr);
    return r;
  };
  const init = await mway(
    'config',
    'init',
    '--broker',
    address,
    '--fleet',
    'prod',
    '--anchor',
    p.root.certPath,
    '--key',
    op.keyPath,
    '--cert',
    op.certPath,
  );
  t.is(init.exitCode, 0, init.stderr);
  await until(
    'both peers report the vpn module',
    async () => {
      const r = await mway('module', 'list', '--json');
      const m = r.exitCode === 0 ? (jsonOut(r.stdout) as Array<{ name: string; peers: string[] }>) : [];
      return m.length === 1 && m[0]?.peers.length === 2;
    },
    60_000,
  );

  // Bad inputs: refused before anything is signed (no job on the broker afterwards).
  const jobsBefore = (jsonOut((await mway('jobs', '--json')).stdout) as unknown[]).length;
  for (const [bad, why] of [
    [['Bad_Name', '--hub', 'p1', '--network', '10.10.0.0/24'], /VPN name "Bad_Name"/],
    [['virt', '--hub', 'p1', '--network', '10.10.0.1/24'], /host bits set/],
    [['virt', '--hub', 'p1', '--network', '10.10.0.0/31'], /no room/],
    [['virt', '--hub', 'p1', '--network', '10.10.0.0/24', '--port', '70000'], /--port must be/],
    [['virt', '--hub', 'p1', '--network', '10.10.0.0/24', '--endpoint', 'a;b'], /--endpoint "a;b"/],
    [['virt', '--hub', 'p1', '--network', '10.10.0.0/24', '--route', '10.1.0.0/33'], /--route/],
  ] as const) {
    const r = await mway('vpn', 'create', ...bad);
    t.is(r.exitCode, 2, `${bad.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, /E_USAGE/);
    t.regex(r.stderr, why);
  }
  const noModule = await mway('vpn', 'create', 'virt', '--hub', 'p9', '--network', '10.10.0.0/24');
  t.is(noModule.exitCode, 1);
  t.regex(noModule.stderr, /E_MODULE_UNKNOWN: p9 reports no vpn module/);
  t.is(
    (jsonOut((await mway('jobs', '--json')).stdout) as unknown[]).length,
    jobsBefore,
    'nothing was signed',
  );

  // The VPN, stored only (no WireGuard in this kernel): p1 the hub, p2 its spoke.
  const created = await mway(
    'vpn',
    'create',
    'virt',
    '--hub',
    'p1',
    '--network',
    '10.10.0.0/24',
    '--peer',
    'p2',
    '--no-up',
    '--json',
  );
  t.is(created.exitCode, 0, created.stdout + created.stderr);
  const c1 = jsonOut(created.stdout) as {
    hub: { peer: string; address: string; publicKey: string; endpoint: string };
    peers: Array<{ peer: string; address: string; publicKey: string }>;
    jobs: string[];
  };
  const facts = jsonOut((await mway('facts', '--peer', 'p1', '--json')).stdout) as Array<{
    facts: { addresses: Record<string, string[]> };
  }>;
  const hubIp = Object.keys(facts[0]?.facts.addresses ?? {})
    .sort()
    .flatMap((k) => facts[0]?.facts.addresses[k] ?? [])
    .find((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a) && !a.startsWith('127.'));
  t.like(c1.hub, { peer: 'p1', address: '10.10.0.1/24', endpoint: `${hubIp}:51820` });
  t.deepEqual(
    c1.peers.map((x) => [x.peer, x.address]),
    [['p2', '10.10.0.2/24']],
  );
  t.is(c1.jobs.length, 4, 'key (both), configure hub, configure p2');

  // Each key where it was made: wg pubkey and X25519 give the public key the peer signed.
  const secret = (i: number, f: string) =>
    readFile(join(roots[i] as string, 'data', 'secure', 'vpn', 'vpn', 'virt', f), 'utf8');
  const privates: string[] = [];
  for (const [i, pub] of [
    [0, c1.hub.publicKey],
    [1, c1.peers[0]?.publicKey],
  ] as const) {
    const key = (await secret(i, 'private.key')).trim();
    privates.push(key);
    const derived = await execa(tools.wg, ['pubkey'], { input: `${key}\n`, timeout: 10_000 });
    t.is(derived.stdout.trim(), pub ?? '');
    t.is(x25519Public(key), pub ?? '');
  }
  t.not(privates[0], privates[1]);

  // The rendered configs: what wg(8) reads, unchanged through wg-quick strip.
  const hubConf = await secret(0, 'virt.conf');
  const spokeConf = await secret(1, 'virt.conf');
  t.is(
    hubConf,
    `[Interface]\nPrivateKey = ${privates[0]}\nListenPort = 51820\n\n[Peer]\nPublicKey = ${c1.peers[0]?.publicKey}\nAllowedIPs = 10.10.0.2/32\n`,
  );
  t.is(
    spokeConf,
    `[Interface]\nPrivateKey = ${privates[1]}\n\n[Peer]\nPublicKey = ${c1.hub.publicKey}\nAllowedIPs = 10.10.0.0/24\nEndpoint = ${hubIp}:51820\nPersistentKeepalive = 25\n`,
  );
  for (const i of [0, 1]) {
    const file = join(roots[i] as string, 'data', 'secure', 'vpn', 'vpn', 'virt', 'virt.conf');
    const strip = await execa('bash', [tools.wgQuick, 'strip', file], { timeout: 10_000, reject: false });
    t.is(strip.exitCode, 0, strip.stderr);
    // wg-quick echoes the lines it keeps and one newline more (execa drops that one).
    t.is(strip.stdout, i === 0 ? hubConf : spokeConf);
  }

  // status: both members, signed; then a second VPN refused by name, and revocation.
  const st = await mway('vpn', 'status', 'virt', '--json');
  t.is(st.exitCode, 0, st.stderr);
  const rows = jsonOut(st.stdout) as Array<{
    peer: string;
    vpn: { role: string; address: string; up: boolean; peers: Array<{ peer: string }> };
  }>;
  t.deepEqual(
    rows.map((r) => [r.peer, r.vpn.role, r.vpn.address, r.vpn.up, r.vpn.peers.map((x) => x.peer)]),
    [
      ['p1', 'hub', '10.10.0.1/24', false, ['p2']],
      ['p2', 'spoke', '10.10.0.2/24', false, ['p1']],
    ],
  );
  const human = await mway('vpn', 'status');
  t.regex(human.stdout, /^virt {2}p2 {2}spoke {2}10\.10\.0\.2\/24 {2}no {2}p1 never$/m);
  const again = await mway('vpn', 'create', 'virt', '--hub', 'p2', '--network', '10.20.0.0/24');
  t.is(again.exitCode, 1);
  t.regex(again.stderr, /E_VPN_EXISTS: p1 already hub/);

  const removed = await mway('vpn', 'remove', 'virt', '--peer', 'p2', '--json');
  t.is(removed.exitCode, 0, removed.stdout + removed.stderr);
  t.is(
    await secret(0, 'virt.conf'),
    `[Interface]\nPrivateKey = ${privates[0]}\nListenPort = 51820\n`,
    'p2 revoked on the hub',
  );
  await t.throwsAsync(secret(1, 'private.key'), { code: 'ENOENT' }, "p2's key is gone with its tunnel");
  // Back in by its network address (the facts' CIDR), with a route behind the hub, into a group.
  const added = await mway(
    'vpn',
    'add',
    'virt',
    '--peer',
    `${hubIp?.split('.').slice(0, 3).join('.')}.0/24`,
    '--route',
    '172.16.42.0/24',
    '--into-group',
    'vpn-virt',
    '--no-up',
    '--json',
  );
  t.is(added.exitCode, 0, added.stdout + added.stderr);
  const a1 = jsonOut(added.stdout) as {
    added: Array<{ peer: string; address: string; publicKey: string }>;
  };
  t.deepEqual(
    a1.added.map((x) => [x.peer, x.address]),
    [['p2', '10.10.0.2/24']],
    'its address is free again',
  );
  t.not(a1.added[0]?.publicKey, c1.peers[0]?.publicKey, 'a new key, made on p2');
  privates.push((await secret(1, 'private.key')).trim());
  t.regex(await secret(1, 'virt.conf'), /^AllowedIPs = 10\.10\.0\.0\/24, 172\.16\.42\.0\/24$/m);
  const groups = jsonOut((await mway('group', 'list', '--json')).stdout) as Array<{
    group: string;
    members: string[];
  }>;
  t.deepEqual(
    groups.find((g) => g.group === 'vpn-virt')?.members,
    ['p2'],
    'the new member, by signed membership',
  );

  // Brought up on a kernel without WireGuard: the member says so, and the step fails.
  const probe = await execa('unshare', ['--net', 'ip', 'link', 'add', 'mwprobe0', 'type', 'wireguard'], {
    reject: false,
    timeout: 10_000,
  });
  if (probe.exitCode !== 0) {
    const upNow = await mway(
      'vpn',
      'create',
      'lab',
      '--hub',
      'p2',
      '--network',
      '10.30.0.0/24',
      '--peer',
      'p1',
    );
    t.is(upNow.exitCode, 1);
    t.regex(upNow.stderr, /E_VPN_STEP: vpn configure failed on p2 .*this kernel has no wireguard module/);
  } else t.log('this kernel has WireGuard: the failure without it is not checked here');

  const gone = await mway('vpn', 'remove', 'virt', '--all', '--json');
  t.is(gone.exitCode, 0, gone.stdout + gone.stderr);
  const after = await mway('vpn', 'status', 'virt');
  t.regex(after.stderr, /E_VPN_UNKNOWN/);

  // No private key in any answer mway printed, nor anywhere in the broker's database files.
  const db = Buffer.concat(
    await Promise.all(
      (await readdir(dir)).filter((f) => f.startsWith('broker.sqlite')).map((f) => readFile(join(dir, f))),
    ),
  );
  t.true(db.length > 0);
  for (const k of privates) {
    t.false(
      answers.some((a) => a.includes(k)),
      'a private key in an answer',
    );
    t.false(db.includes(Buffer.from(k)), "a private key in the broker's database");
    t.false(db.includes(Buffer.from(k, 'base64')), "a private key's bytes in the broker's database");
  }
});
