// provisionFromSeed() as PID 1 applies it, run in a network and UTS namespace of its own: the
// seed's hostname becomes the namespace's, its interfaces are found by name or by MAC and get
// their addresses and default routes — read back with iproute2's JSON output (`ip -j`), not
// with anything the agent wrote; DHCP it does not do is warned about, not faked.
import test from 'ava';
import { execa } from 'execa';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT, tempDir } from '../../helpers.ts';

interface IpAddr {
  ifname: string;
  operstate: string;
  flags: string[];
  addr_info: Array<{ local: string; prefixlen: number; family: string }>;
}

test('provisionFromSeed() as PID 1 sets the hostname and brings interfaces up by name and by MAC, with addresses and default routes', async (t) => {
  const dir = await tempDir(t, 'mway-seedapply-');
  const src = join(dir, 'src');
  await mkdir(src);
  await writeFile(join(src, 'meta-data'), 'instance-id: i-apply\nlocal-hostname: seeded-host\n');
  // v1: d1 by MAC with a dotted netmask and an IPv6 static; v2 would do the same (parser tests).
  await writeFile(
    join(src, 'network-config'),
    `version: 1
config:
  - type: physical
    name: d0
    subnets:
      - {type: static, address: 192.0.2.10/24, gateway: 192.0.2.1}
      - {type: dhcp}
  - type: physical
    mac_address: "52:54:00:aa:bb:cc"
    subnets:
      - {type: static, address: 198.51.100.7, netmask: 255.255.255.128}
      - {type: static6, address: 2001:db8::7/64, gateway: 2001:db8::1}
`,
  );
  await execa('genisoimage', ['-quiet', '-o', join(dir, 'seed.iso'), '-V', 'cidata', '-J', '-R', src], {
    timeout: 30_000,
  });
  const script = join(dir, 'apply.ts');
  await writeFile(
    script,
    `import { provisionFromSeed } from ${JSON.stringify(join(ROOT, 'agent/core/nocloud-apply.ts'))};
const seed = await provisionFromSeed({
  device: ${JSON.stringify(join(dir, 'seed.iso'))},
  pid1: true,
  log: (l, m) => console.log(l, m),
  warn: (m) => console.log('warn', m),
});
console.log('seed', seed?.instanceId);
`,
  );
  // In namespaces of its own: two veth interfaces (their peers up, for a carrier), the second
  // found by its MAC only (in this namespace's sysfs, mounted for it).
  const r = await execa(
    'unshare',
    [
      '--net',
      '--uts',
      '--mount',
      'sh',
      '-c',
      `set -e
ip link add d0 type veth peer name p0
ip link add d1 type veth peer name p1
ip link set d1 address 52:54:00:aa:bb:cc
ip link set p0 up
ip link set p1 up
mount -t sysfs sysfs /sys
sleep 0.2
"$1" "$2"
echo "=== addr"; ip -j addr show
echo "=== route"; ip -j route show default
echo "=== route6"; ip -j -6 route show default
echo "=== hostname"; hostname`,
      'sh',
      process.execPath,
      script,
    ],
    { timeout: 60_000, reject: false, all: true },
  );
  t.is(r.exitCode, 0, r.all);
  const part = (name: string) => r.stdout.split(`=== ${name}\n`)[1]?.split('\n=== ')[0] ?? '';
  t.regex(
    r.stdout,
    /info cloud-init seed from .*seed\.iso: instance i-apply, hostname seeded-host, 2 interface\(s\)/,
  );
  t.regex(r.stdout, /warn cloud-init seed: d0: not done: dhcp \(no DHCP client on MilkyWayLinux\)/);
  t.regex(r.stdout, /seed i-apply/);
  const addrs = JSON.parse(part('addr')) as IpAddr[];
  const of = (n: string) =>
    addrs
      .find((a) => a.ifname === n)
      ?.addr_info.filter((i) => !i.local.startsWith('fe80'))
      .map((i) => `${i.local}/${i.prefixlen}`);
  t.deepEqual(of('d0'), ['192.0.2.10/24']);
  t.deepEqual(of('d1'), ['198.51.100.7/25', '2001:db8::7/64']);
  t.true(addrs.find((a) => a.ifname === 'd0')?.flags.includes('UP'));
  const routes = JSON.parse(part('route')) as Array<{ gateway: string; dev: string }>;
  t.deepEqual(
    routes.map((x) => [x.gateway, x.dev]),
    [['192.0.2.1', 'd0']],
  );
  const routes6 = JSON.parse(part('route6')) as Array<{ gateway: string; dev: string }>;
  t.deepEqual(
    routes6.map((x) => [x.gateway, x.dev]),
    [['2001:db8::1', 'd1']],
  );
  t.is(part('hostname').trim(), 'seeded-host');
});
