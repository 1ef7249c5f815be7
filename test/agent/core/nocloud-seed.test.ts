// The cloud-init NoCloud seed as the agent reads it: cloud-init's own documented examples
// (meta-data, #cloud-config user-data, network-config v1 and v2) parse to what they say; a
// seed volume is found among other disks by its cidata label on volumes made by genisoimage
// and mkfs.vfat + mcopy; hostile seeds are refused whole with E_SEED_INVALID / E_SEED_VOLUME.
import test from 'ava';
import { execa } from 'execa';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { provisionFromSeed } from '../../../agent/core/nocloud-apply.ts';
import { parseNocloudSeed } from '../../../agent/core/nocloud-seed.ts';
import { readSeedVolume } from '../../../agent/core/nocloud-volume.ts';
import { tempDir } from '../../helpers.ts';

const enc = (s: string) => Buffer.from(s);
const seedOf = (o: Record<string, string>) => new Map(Object.entries(o).map(([k, v]) => [k, enc(v)]));

const TOKEN = {
  payload: { v: 1, id: 'ab'.repeat(16), fleet: 'prod' },
  signature: 'AAAA',
  type: 'enroll-token',
};

// cloud-init docs, "NoCloud": meta-data and a network-config v2 with a MAC match.
const META = 'instance-id: iid-local01\nlocal-hostname: cloudimg\n';
const NET_V2 = `version: 2
ethernets:
  interface0:
    match:
      macaddress: "52:54:00:12:34:00"
    set-name: interface0
    addresses:
      - 192.168.1.10/24
    gateway4: 192.168.1.254
`;
// cloud-init docs, "Networking config Version 1".
const NET_V1 = `version: 1
config:
  - type: physical
    name: interface0
    mac_address: "52:54:00:12:34:00"
    subnets:
      - type: static
        address: 192.168.1.10
        netmask: 255.255.255.0
        gateway: 192.168.1.254
  - type: nameserver
    address: [192.168.1.1]
`;

test('parseNocloudSeed() reads hostname, broker and token from #cloud-config and the network from network-config v2', (t) => {
  const user = `#cloud-config\nhostname: web-7.example.com\nruncmd: [[rm, -rf, /]]\nusers: [{name: eve}]\nmilkyway:\n  broker: 10.0.2.2:7443\n  token: ${JSON.stringify(TOKEN)}\n`;
  const s = parseNocloudSeed(seedOf({ 'meta-data': META, 'user-data': user, 'network-config': NET_V2 }));
  t.is(s.instanceId, 'iid-local01');
  // user-data's hostname wins over meta-data's local-hostname (cc_set_hostname), short name.
  t.is(s.hostname, 'web-7');
  t.is(s.broker, '10.0.2.2:7443');
  t.deepEqual(s.token, TOKEN);
  t.deepEqual(s.interfaces, [
    { mac: '52:54:00:12:34:00', addresses: ['192.168.1.10/24'], gateway4: '192.168.1.254', skipped: [] },
  ]);
  // Never run, and said so.
  t.deepEqual(s.ignored, ['user-data runcmd', 'user-data users']);
});

test('parseNocloudSeed() reads network-config v1 (netmask to a prefix) and a token given as a JSON block string', (t) => {
  const user = `#cloud-config\nmilkyway:\n  token: |\n${JSON.stringify(TOKEN, null, 2)
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n')}\n`;
  const s = parseNocloudSeed(seedOf({ 'meta-data': META, 'user-data': user, 'network-config': NET_V1 }));
  t.is(s.hostname, 'cloudimg');
  t.deepEqual(s.token, TOKEN);
  t.is(s.broker, undefined);
  t.deepEqual(s.interfaces, [
    {
      name: 'interface0',
      mac: '52:54:00:12:34:00',
      addresses: ['192.168.1.10/24'],
      gateway4: '192.168.1.254',
      skipped: [],
    },
  ]);
  t.deepEqual(s.ignored, ['network-config config[1] (type nameserver)']);
});

test('parseNocloudSeed() notes DHCP and nameservers it does not do, and reads an empty meta-data', (t) => {
  const net =
    'network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n      nameservers: {addresses: [1.1.1.1]}\n';
  const s = parseNocloudSeed(seedOf({ 'meta-data': '', 'network-config': net }));
  t.deepEqual(s.interfaces, [
    {
      name: 'eth0',
      addresses: [],
      skipped: ['dhcp4 (no DHCP client on MilkyWayLinux)', 'nameservers (/etc is read-only CoreOS)'],
    },
  ]);
  t.is(s.hostname, undefined);
});

for (const [what, files, key] of [
  ['no meta-data', { 'user-data': '#cloud-config\n' }, /meta-data: \(file\): missing/],
  [
    'a shell script as user-data',
    { 'meta-data': META, 'user-data': '#!/bin/sh\nrm -rf /\n' },
    /user-data: \(first line\).*never run/,
  ],
  [
    'user-data that is not YAML',
    { 'meta-data': META, 'user-data': '#cloud-config\nhostname: [a\n' },
    /user-data: \(top level\): not YAML/,
  ],
  [
    'a YAML alias bomb',
    {
      'meta-data': `a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n`,
    },
    /meta-data: \(top level\): not YAML/,
  ],
  [
    'a duplicate key',
    { 'meta-data': 'local-hostname: a\nlocal-hostname: b\n' },
    /meta-data: \(top level\): not YAML/,
  ],
  [
    'a bad hostname',
    { 'meta-data': 'local-hostname: "web 7; reboot"\n' },
    /meta-data: local-hostname: .* is not a host name/,
  ],
  [
    'a broker that is not host:port',
    { 'meta-data': META, 'user-data': '#cloud-config\nmilkyway: {broker: "evil"}\n' },
    /user-data: milkyway\.broker/,
  ],
  [
    'a broker port above 65535',
    { 'meta-data': META, 'user-data': '#cloud-config\nmilkyway: {broker: "10.0.2.2:99999"}\n' },
    /user-data: milkyway\.broker: .* port outside 1\.\.65535/,
  ],
  [
    'an unknown milkyway key',
    { 'meta-data': META, 'user-data': '#cloud-config\nmilkyway: {anchors: [/x]}\n' },
    /user-data: milkyway\.anchors: unknown key/,
  ],
  [
    'a token that is not JSON',
    { 'meta-data': META, 'user-data': '#cloud-config\nmilkyway: {token: "{nope"}\n' },
    /user-data: milkyway\.token: not JSON/,
  ],
  [
    'an address without a prefix',
    { 'meta-data': META, 'network-config': 'version: 2\nethernets: {eth0: {addresses: [10.0.0.1]}}\n' },
    /network-config: ethernets\.eth0\.addresses\[0\]/,
  ],
  [
    'an interface name with a slash',
    { 'meta-data': META, 'network-config': 'version: 2\nethernets: {"../x": {}}\n' },
    /network-config: ethernets/,
  ],
  [
    'network-config version 3',
    { 'meta-data': META, 'network-config': 'version: 3\n' },
    /network-config: version: expected 1 or 2/,
  ],
  [
    'a huge user-data',
    { 'meta-data': META, 'user-data': `#cloud-config\n#${'x'.repeat(300_000)}\n` },
    /user-data: \(top level\): 300\d+ bytes, above/,
  ],
] as const) {
  test(`parseNocloudSeed() refuses ${what} with E_SEED_INVALID naming the file and key`, (t) => {
    const e = t.throws(() => parseNocloudSeed(seedOf(files)));
    t.is((e as { code?: string }).code, 'E_SEED_INVALID');
    t.regex(e?.message ?? '', key);
  });
}

async function seedFiles(dir: string): Promise<string[]> {
  await writeFile(join(dir, 'meta-data'), META);
  await writeFile(join(dir, 'user-data'), '#cloud-config\nmilkyway: {broker: "10.0.2.2:7443"}\n');
  return ['meta-data', 'user-data'];
}

test('readSeedVolume(auto) finds the volume labelled cidata among others (ext4, FAT of another label, empty), on ISO 9660 and FAT', async (t) => {
  const dir = await tempDir(t, 'mway-seedvol-');
  const src = join(dir, 'src');
  await mkdir(src);
  const names = await seedFiles(src);
  const dev = join(dir, 'dev');
  const sys = join(dir, 'sys');
  await mkdir(dev);
  await mkdir(sys);
  const disk = async (n: string, make: (p: string) => Promise<unknown>) => {
    await mkdir(join(sys, n));
    await make(join(dev, n));
  };
  await disk('vda', async (p) => {
    await execa('truncate', ['-s', '8M', p]);
    await execa('mkfs.ext4', ['-q', '-L', 'cidata', p], { timeout: 30_000 });
  });
  await disk('vdb', async (p) => {
    await execa('truncate', ['-s', '1M', p]);
    await execa('mkfs.vfat', ['-n', 'OTHER', p], { timeout: 30_000 });
    await execa('mcopy', ['-i', p, ...names.map((n) => join(src, n)), '::'], {
      env: { MTOOLS_SKIP_CHECK: '1' },
    });
  });
  await disk('vdc', (p) => writeFile(p, new Uint8Array(4096)));
  await disk('loop0', (p) =>
    execa('genisoimage', ['-quiet', '-o', p, '-V', 'cidata', '-J', '-R', ...names], { cwd: src }),
  );
  t.is(
    await readSeedVolume('auto', { sysBlock: sys, devDir: dev }),
    undefined,
    'loop devices are not looked at',
  );
  await disk('vdd', (p) =>
    execa('genisoimage', ['-quiet', '-o', p, '-V', 'cidata', '-J', '-R', ...names], { cwd: src }),
  );
  const iso = await readSeedVolume('auto', { sysBlock: sys, devDir: dev });
  t.is(iso?.source, join(dev, 'vdd'));
  t.deepEqual(iso?.info, { type: 'iso9660', label: 'cidata' });
  t.is(parseNocloudSeed(iso?.files ?? new Map()).broker, '10.0.2.2:7443');
  // A FAT seed, earlier by name, labelled CIDATA (mkfs.vfat's upper case).
  await disk('sda', async (p) => {
    await execa('truncate', ['-s', '1M', p]);
    await execa('mkfs.vfat', ['-n', 'CIDATA', p], { timeout: 30_000 });
    await execa('mcopy', ['-i', p, ...names.map((n) => join(src, n)), '::'], {
      env: { MTOOLS_SKIP_CHECK: '1' },
    });
  });
  const fat = await readSeedVolume('auto', { sysBlock: sys, devDir: dev });
  t.is(fat?.source, join(dev, 'sda'));
  t.is(parseNocloudSeed(fat?.files ?? new Map()).instanceId, 'iid-local01');
});

test('readSeedVolume(path) refuses a FIFO, a missing file and an ext4 image with E_SEED_VOLUME (no hang)', async (t) => {
  const dir = await tempDir(t, 'mway-seedbad-');
  await execa('mkfifo', [join(dir, 'fifo')]);
  await execa('truncate', ['-s', '8M', join(dir, 'ext4')]);
  await execa('mkfs.ext4', ['-q', join(dir, 'ext4')], { timeout: 30_000 });
  for (const [n, re] of [
    ['fifo', /not a block device or an image file/],
    ['missing', /ENOENT/],
    ['ext4', /neither a FAT nor an ISO 9660/],
  ] as const) {
    const e = await t.throwsAsync(readSeedVolume(join(dir, n)));
    t.is((e as { code?: string }).code, 'E_SEED_VOLUME', n);
    t.regex(e?.message ?? '', re);
  }
});

test('provisionFromSeed() off PID 1 reads the seed, leaves hostname and network alone, and logs a refused seed without throwing', async (t) => {
  const dir = await tempDir(t, 'mway-seedprov-');
  const src = join(dir, 'src');
  await mkdir(src);
  await writeFile(join(src, 'meta-data'), 'local-hostname: not-this-host\n');
  await writeFile(
    join(src, 'user-data'),
    '#cloud-config\nwrite_files: [{path: /etc/x}]\nmilkyway: {broker: "127.0.0.1:7443"}\n',
  );
  await execa(
    'genisoimage',
    ['-quiet', '-o', join(dir, 'seed.iso'), '-V', 'cidata', '-J', '-R', 'meta-data', 'user-data'],
    { cwd: src },
  );
  const lines: string[] = [];
  const warnings: string[] = [];
  const o = {
    pid1: false,
    log: (_l: string, m: string) => lines.push(m),
    warn: (m: string) => warnings.push(m),
  };
  const { hostname } = await import('node:os');
  const before = hostname();
  const seed = await provisionFromSeed({ ...o, device: join(dir, 'seed.iso') });
  t.is(seed?.broker, '127.0.0.1:7443');
  t.is(hostname(), before);
  t.true(
    warnings.some((w) => /ignored .*user-data write_files/.test(w)),
    warnings.join('\n'),
  );
  await writeFile(join(src, 'user-data'), '#!/bin/sh\necho pwned\n');
  await execa(
    'genisoimage',
    ['-quiet', '-o', join(dir, 'bad.iso'), '-V', 'cidata', '-J', '-R', 'meta-data', 'user-data'],
    { cwd: src },
  );
  t.is(await provisionFromSeed({ ...o, device: join(dir, 'bad.iso') }), undefined);
  t.true(
    lines.some((l) => /cloud-init seed refused: E_SEED_INVALID: .*user-data/.test(l)),
    lines.join('\n'),
  );
});
