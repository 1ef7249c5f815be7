// QEMU TEST (SLOW: TCG only, one boot of ~3–6 min on 2 cores). One image for every machine,
// provisioned by cloud-init: the disk carries no peer identity, no network and no broker
// address — its agent config has only `control.enroll` and `nocloud`. A NoCloud seed made by
// genisoimage (as cloud-init's docs make one) is attached as a second virtio disk; it names the
// machine (meta-data), its address and route (network-config v2), the broker (10.0.2.2, QEMU's
// way to the host's loopback) and an enrollment token (user-data). The agent, real PID 1,
// reads the seed without mounting it, brings eth0 up, generates its keys, prints their
// fingerprint and enrolls; `mway peers pending` shows that fingerprint with the seed's hostname
// and address in the signed request's facts; `mway peers autosign` accepts it into the token's
// group; the guest stores the certificate on its data partition, links, and runs a command.
import test from 'ava';
import { execa } from 'execa';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildImage } from '../../imagebuild/build-image.ts';
import { loadImageKeys } from '../../imagebuild/dev-keys.ts';
import { loadImageSpec } from '../../imagebuild/image-spec.ts';
import { newIdentity, newSecureBootKeys, readCertificates, readPrivateKey } from '../../keys/index.ts';
import { cli, freePort, ROOT, tempDir, until } from '../helpers.ts';
import { bootGuest, startBroker } from './_qemu-guest.ts';

const BOOT_MS = 9 * 60_000;
const NAME = 'qemu-seeded';

test.serial(
  'QEMU: a disk with no identity, network or broker address is provisioned by a cloud-init seed, enrolls with its token, is autosigned and runs a command',
  async (t) => {
    t.timeout(BOOT_MS + 300_000);
    const dir = await tempDir(t, 'mway-qemu-enroll-');
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
    // `*` never includes exec: the command run at the end needs it named.
    const admin = await newIdentity({
      ...under,
      role: 'operator',
      name: 'admin',
      groups: ['*'],
      actions: ['*', 'exec'],
      outDir: join(dir, 'operator'),
    });

    const port = await freePort();
    const spec = join(dir, 'image.json');
    await writeFile(
      spec,
      JSON.stringify({
        name: 'milkyway',
        version: '1.0.0',
        kernel: { package: 'linux-image-amd64' },
        // No coreos.network, no peerIdentity, no hostname in the secure config: the seed says them.
        layers: [join(ROOT, 'examples/default/layers/web')],
        keys: { dir: keysDir },
        secureConfig: { groups: {}, allowLayers: ['web'] },
        agent: {
          control: {
            fleet: 'qemu',
            anchors: ['/certs'],
            crls: ['/certs'],
            enroll: { dir: '/data/identity', pollMs: 2000 },
            maxBackoffMs: 3000,
            statusIntervalMs: 15_000,
          },
          nocloud: {},
        },
        partitions: { esp: 64, layers: 64, data: 64 },
      }),
    );
    const t0 = Date.now();
    const built = await buildImage({
      spec: await loadImageSpec(spec),
      outDir: join(dir, 'out'),
      sourceDateEpoch: 1_700_000_000,
    });
    t.log(`image built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

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
    const srv = await startBroker(t, brokerConfig, BOOT_MS + 240_000);
    const env = { MWAY_CONFIG_DIR: join(dir, 'mway') };
    const mway = (...args: string[]) => cli('mway', args, { env, timeout: 240_000 });
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
      admin.keyPath,
      '--cert',
      admin.certPath,
    );
    t.is(init.exitCode, 0, init.stderr);
    t.is((await mway('group', 'create', 'web')).exitCode, 0);
    const tokenFile = join(dir, 'web.token');
    const made = await mway(
      'peers',
      'token',
      'create',
      '--group',
      'web',
      '--label',
      'seeded=yes',
      '-o',
      tokenFile,
    );
    t.is(made.exitCode, 0, made.stderr);

    // The seed, as cloud-init's docs make one.
    const seedDir = join(dir, 'seed');
    await mkdir(seedDir);
    await writeFile(join(seedDir, 'meta-data'), `instance-id: iid-${NAME}\nlocal-hostname: ${NAME}\n`);
    await writeFile(
      join(seedDir, 'network-config'),
      'version: 2\nethernets:\n  eth0:\n    addresses: [10.0.2.15/24]\n    gateway4: 10.0.2.2\n',
    );
    const token = (await readFile(tokenFile, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => `    ${l}`)
      .join('\n');
    await writeFile(
      join(seedDir, 'user-data'),
      `#cloud-config\nruncmd: [poweroff]\nmilkyway:\n  broker: 10.0.2.2:${port}\n  token: |\n${token}\n`,
    );
    const seed = join(dir, 'seed.iso');
    await execa(
      'genisoimage',
      [
        '-quiet',
        '-output',
        seed,
        '-volid',
        'cidata',
        '-joliet',
        '-rock',
        'user-data',
        'meta-data',
        'network-config',
      ],
      { cwd: seedDir, timeout: 60_000 },
    );

    const t1 = Date.now();
    const b = bootGuest(t, built.disk, { timeoutMs: BOOT_MS, seed });
    await b.started;
    const console = () => b.lines.slice(-30).join('\n');
    const read = await b.until(/cloud-init seed from \/dev\/vd\w+: instance iid-qemu-seeded/);
    t.truthy(read, console());
    if (read === undefined) return;
    t.regex(read, /hostname qemu-seeded, 1 interface\(s\), broker 10\.0\.2\.2:\d+, an enrollment token/);
    t.truthy(await b.until(/cloud-init seed: eth0 up with 10\.0\.2\.15\/24/), console());
    t.truthy(await b.until(/ignored \(this OS runs only what is signed\): user-data runcmd/), console());
    const asking = await b.until(/control: enrolling as qemu-seeded: key fingerprint [0-9a-f]{64}/);
    t.truthy(asking, `${console()}\nbroker:\n${srv.lines.join('\n')}`);
    if (asking === undefined) return;
    const fingerprint = /fingerprint ([0-9a-f]{64})/.exec(asking)?.[1];
    t.log(`guest asked to enroll ${((Date.now() - t1) / 1000).toFixed(1)} s after QEMU started`);

    // The request as the operator sees it: the console's fingerprint, the seed's name and address.
    interface Pending {
      requestId: string;
      peerId: string;
      fingerprint: string;
      facts: { hostname: string; addresses: Record<string, string[]> };
    }
    let rows: Pending[] = [];
    await until(
      'the request is pending',
      async () => {
        rows = JSON.parse((await mway('peers', 'pending', '--json')).stdout) as Pending[];
        return rows.length === 1;
      },
      180_000,
    );
    t.is(rows[0]?.peerId, NAME);
    t.is(rows[0]?.fingerprint, fingerprint);
    t.is(rows[0]?.facts.hostname, NAME);
    t.deepEqual(
      rows[0]?.facts.addresses.eth0?.filter((a) => a.includes('.')),
      ['10.0.2.15'],
    );

    const R = [
      '--issuer-key',
      join(keysDir, 'user-root.key'),
      '--issuer-cert',
      join(keysDir, 'user-root.crt'),
    ];
    const auto = await mway('peers', 'autosign', ...R);
    t.is(auto.exitCode, 0, auto.stdout + auto.stderr);
    t.regex(auto.stdout, /^accepted qemu-seeded \(request .*, groups web\)$/m);
    const linked = await b.until(/control: connected to broker 10\.0\.2\.2:\d+ as qemu-seeded/);
    t.truthy(linked, console());
    t.truthy(
      b.lines.some((l) => /control: enrolled: certified as qemu-seeded/.test(l)),
      console(),
    );
    t.log(`guest linked ${((Date.now() - t1) / 1000).toFixed(1)} s after QEMU started`);

    const peers = JSON.parse((await mway('peers', '--json')).stdout) as Array<{
      peerId: string;
      online: boolean;
      labels: Record<string, string>;
    }>;
    t.deepEqual(
      peers.map((p) => [p.peerId, p.online, p.labels.seeded]),
      [[NAME, true, 'yes']],
    );
    // The token's group reaches it (its membership was signed at acceptance), and it runs a command.
    await until(
      'the membership of web applied',
      async () => (await mway('status', '--group', 'web', '--timeout', '60')).exitCode === 0,
      240_000,
    );
    const run = await mway(
      'run',
      '--group',
      'web',
      '--timeout',
      '180',
      '--json',
      '--static',
      '--',
      'cat',
      '/proc/sys/kernel/hostname',
    );
    t.is(run.exitCode, 0, run.stdout + run.stderr + console());
    const out = JSON.parse(run.stdout) as {
      peers: Array<{ peer: string; outcome: string; output: { stdout: string } }>;
    };
    t.deepEqual(
      out.peers.map((p) => [p.peer, p.outcome, p.output.stdout.trim()]),
      [[NAME, 'ok', NAME]],
    );
  },
);
