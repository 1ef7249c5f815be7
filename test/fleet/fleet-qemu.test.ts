// QEMU TEST (SLOW: TCG only, one boot of ~3–6 min on 2 cores). The same `mway` commands that
// drive namespace-mode agents reach the agent running as real PID 1 inside the guest: the
// image carries a peer identity (peer-identity partition, mounted at /identity) and an agent
// `control` section naming the broker as 10.0.2.2:PORT, which QEMU's user network maps to
// the host's loopback, where `milkywaysrvd` listens on 127.0.0.1. The test drives `mway
// peers`, `mway status --peer`, `mway service … status|restart` of the example layer's
// service, a group with a signed membership, `mway install` of a new signed layer streamed
// into the guest, `mway reboot` (the guest comes back with the layer and reconnects), and
// `mway poweroff`, after which QEMU must exit on its own (the agent's orderly shutdown ends
// in a real poweroff). QEMU and the broker are killed in teardown.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { buildImage } from '../../imagebuild/build-image.ts';
import { loadImageKeys } from '../../imagebuild/dev-keys.ts';
import { loadImageSpec } from '../../imagebuild/image-spec.ts';
import { newIdentity, newSecureBootKeys, readCertificates, readPrivateKey } from '../../keys/index.ts';
import { packLayer } from '../../layers/pack.ts';
import { cli, freePort, jsonOut, ROOT, tempDir } from '../helpers.ts';
import { bootGuest, startBroker } from './_qemu-guest.ts';

const BOOT_MS = 9 * 60_000;

/** AgentStatus.selinux and ServiceInfo.selinux as the signed answers carry them. */
interface Selinux {
  mode: string;
  denials: number;
  policy?: { version: number; format: number; sha256: string; layers: number };
  context?: string;
}
interface Svc {
  name: string;
  state: string;
  selinux?: { context: string; domain: string; level: string; running?: string[] };
}

test.serial(
  'QEMU: mway peers/status/service/group/install/reboot/poweroff reach the agent (real PID 1) in the guest through the broker on the host loopback',
  async (t) => {
    t.timeout(BOOT_MS + 300_000);
    const dir = await tempDir(t, 'mway-fleet-qemu-');
    // The image's own development PKI; the broker, operator and peer are issued by its user root.
    const keysDir = join(dir, 'keys');
    await loadImageKeys(keysDir, { generate: true });
    // A keys folder of one's own also needs the boot chain's Secure Boot keys (mway keys secure-boot).
    await newSecureBootKeys({ dir: keysDir, kind: 'user', name: 'user' });
    await newSecureBootKeys({ dir: keysDir, kind: 'vendor', name: 'vendor' });
    const rootKey = await readPrivateKey(join(keysDir, 'user-root.key'));
    const [rootCert] = await readCertificates(join(keysDir, 'user-root.crt'));
    if (rootCert === undefined) return t.fail('no user root');
    const under = { issuerKey: rootKey, issuerCert: rootCert };
    const peer = await newIdentity({
      ...under,
      role: 'peer',
      name: 'peer',
      peerId: 'qemu1',
      outDir: join(dir, 'identity'),
    });
    if (peer.kemKeyPath === undefined) return t.fail('peer identity without an ML-KEM key');
    const broker = await newIdentity({
      ...under,
      role: 'broker',
      name: 'broker',
      dnsNames: ['localhost'],
      outDir: join(dir, 'broker'),
    });
    const admin = await newIdentity({
      ...under,
      role: 'operator',
      name: 'admin',
      groups: ['*'],
      actions: ['*'],
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
        coreos: { network: { interface: 'eth0', address: '10.0.2.15/24', gateway: '10.0.2.2' } },
        layers: [join(ROOT, 'examples/default/layers/web')],
        keys: { dir: keysDir },
        secureConfig: { hostname: 'qemu1', groups: {}, allowLayers: ['web', 'hello', 'bad'] },
        agent: {
          control: {
            // QEMU user networking: 10.0.2.2 is the host's loopback.
            broker: `10.0.2.2:${port}`,
            fleet: 'qemu',
            key: '/identity/peer.key',
            cert: '/identity/peer.crt',
            kemKey: '/identity/peer.kem.key',
            anchors: ['/certs'],
            crls: ['/certs'],
            maxBackoffMs: 3000,
            statusIntervalMs: 15_000,
          },
        },
        partitions: { esp: 64, layers: 64, data: 64 },
        peerIdentity: join(dir, 'identity'),
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

    const t1 = Date.now();
    const b = bootGuest(t, built.disk, { timeoutMs: BOOT_MS });
    const q = await b.started;
    const console = () => b.lines.slice(-25).join('\n');
    const linked = await b.until(/control: connected to broker 10\.0\.2\.2:\d+ as qemu1/);
    t.truthy(linked, `${console()}\nbroker:\n${srv.lines.join('\n')}`);
    if (linked === undefined) return;
    t.log(`guest connected to the broker ${((Date.now() - t1) / 1000).toFixed(1)} s after QEMU started`);
    // The layer's service must be up before it is restarted.
    t.truthy(await b.until(/milkyway-agent info: boot done:/), console());

    const peers = await mway('peers', '--json');
    t.is(peers.exitCode, 0, peers.stderr);
    const list = jsonOut(peers.stdout) as Array<{ peerId: string; online: boolean }>;
    t.deepEqual(
      list.map((p) => [p.peerId, p.online]),
      [['qemu1', true]],
    );

    const status = await mway('status', '--peer', 'qemu1', '--timeout', '180', '--json', '--static');
    t.is(status.exitCode, 0, status.stdout + status.stderr + console());
    const st = jsonOut(status.stdout) as {
      peers: Array<{
        peer: string;
        outcome: string;
        output: { agent: { mode: string; selinux: Selinux }; services: Svc[] };
      }>;
    };
    t.deepEqual(
      st.peers.map((p) => [p.peer, p.outcome, p.output.agent.mode]),
      [['qemu1', 'ok', 'pid1']],
    );
    // The image is enforcing (the spec's default): the signed status says so, names the loaded
    // policy, counts no denial, and puts web/httpd in its layer's domain and pair — the label the
    // agent gave it, and what the kernel says of its processes (/proc/PID/attr/current).
    const out = st.peers[0]?.output;
    t.like(
      out?.agent.selinux,
      { mode: 'enforcing', denials: 0, policy: { format: 33, layers: 1 } },
      console(),
    );
    t.regex(out?.agent.selinux.policy?.sha256 ?? '', /^[0-9a-f]{64}$/);
    t.regex(out?.agent.selinux.context ?? '', /^system_u:system_r:milkyway_agent_t:s0-s0:c0\.c1023$/);
    const web = out?.services.find((s) => s.name === 'web/httpd')?.selinux;
    t.regex(web?.context ?? '', /^system_u:system_r:mway_web_t:s0:c\d+,c\d+$/, JSON.stringify(out?.services));
    t.like(web, { domain: 'mway_web_t', level: web?.context.split(':').slice(3).join(':') });
    t.deepEqual(web?.running, [web?.context], 'the kernel runs it where the agent says');
    const text = await mway('status', '--peer', 'qemu1', '--timeout', '180');
    t.regex(
      text.stdout,
      /qemu1 +ok +running, .*, selinux enforcing, policy \d+ sha256 [0-9a-f]{16}…, 0 denials/,
    );
    t.regex(text.stdout, /^SERVICE +LAYER +STATE +PID +RESTARTS +SINCE +DOMAIN +LEVEL/m);
    t.regex(text.stdout, /^web\/httpd +web +running +\d+ +\d+ +\S+ +mway_web_t +s0:c\d+,c\d+$/m, text.stdout);

    type One = { peers: Array<{ peer: string; outcome: string; output: { state: string; pid?: number } }> };
    const service = async (verb: string): Promise<One['peers'][number] | undefined> => {
      const r = await mway(
        'service',
        '--peer',
        'qemu1',
        verb,
        'web/httpd',
        '--timeout',
        '180',
        '--json',
        '--static',
      );
      t.is(r.exitCode, 0, `${verb}: ${r.stdout}${r.stderr}\n${console()}`);
      return (jsonOut(r.stdout) as One).peers[0];
    };
    const before = await service('status');
    t.like(before, { peer: 'qemu1', outcome: 'ok', output: { state: 'running' } });
    const restarted = await service('restart');
    t.like(restarted, { peer: 'qemu1', outcome: 'ok' });
    // A restart is a new sandbox process: a new pid once it is running again (bounded wait).
    let after = await service('status');
    for (let i = 0; i < 20 && after?.output.state !== 'running'; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      after = await service('status');
    }
    t.is(after?.output.state, 'running');
    t.not(after?.output.pid, undefined);
    t.not(after?.output.pid, before?.output.pid, 'restart started a new process');

    // A group: the membership is signed by the operator and held by the guest's agent.
    t.is((await mway('group', 'create', 'qemu')).exitCode, 0);
    t.is((await mway('group', 'add', 'qemu', 'qemu1')).exitCode, 0);
    let held = false;
    let stored: Array<{ groups?: string[]; selinux?: Selinux; units?: Svc[] }> = [];
    for (let i = 0; i < 60 && !held; i++) {
      stored = jsonOut((await mway('status', '--json')).stdout) as typeof stored;
      held = stored[0]?.groups?.includes('qemu') === true;
      if (!held) await new Promise((r) => setTimeout(r, 1000));
    }
    t.true(held, `membership not reported\n${console()}`);
    // The periodic signed status carries the same: the mode and each service's domain and pair.
    t.like(stored[0]?.selinux, { mode: 'enforcing', denials: 0 });
    t.like(stored[0]?.units?.find((u) => u.name === 'web/httpd')?.selinux, { domain: 'mway_web_t' });
    t.regex((await mway('status')).stdout, /^ {2}web\/httpd +running +mway_web_t s0:c\d+,c\d+$/m);

    // A new layer signed by the image's user key, streamed through the broker into the guest.
    const src = join(dir, 'hello');
    await mkdir(join(src, 'rootfs'), { recursive: true });
    await writeFile(join(src, 'rootfs', 'hello.txt'), 'hello from the fleet\n');
    await writeFile(
      join(src, 'layer.json'),
      JSON.stringify({
        name: 'hello',
        version: '1.0.0',
        kind: 'app',
        services: [{ name: 'sleeper', execStart: ['/bin/busybox', 'sleep', '100000'] }],
      }),
    );
    const mwl = join(dir, 'hello.mwl');
    await packLayer({
      dir: src,
      key: await readPrivateKey(join(keysDir, 'user.key')),
      chain: await readCertificates(join(keysDir, 'user.crt')),
      out: mwl,
    });
    const install = await mway('install', '--group', 'qemu', mwl, '--timeout', '240', '--json', '--static');
    t.is(install.exitCode, 0, install.stdout + install.stderr + console());
    const ir = jsonOut(install.stdout) as { peers: Array<{ output: { name: string; state: string } }> };
    t.deepEqual(
      ir.peers.map((x) => [x.output.name, x.output.state]),
      [['hello', 'active']],
    );
    type List = { peers: Array<{ output: Svc[] }> };
    const listed = async (): Promise<string[]> => {
      const r = await mway('service', '--group', 'qemu', 'list', '--timeout', '180', '--json', '--static');
      if (r.exitCode !== 0) return [];
      return ((jsonOut(r.stdout) as List).peers[0]?.output ?? [])
        .filter((x) => x.state === 'running')
        .map((x) => x.name)
        .sort();
    };
    let running: string[] = [];
    for (let i = 0; i < 30 && running.length < 2; i++) {
      running = await listed();
      if (running.length < 2) await new Promise((r) => setTimeout(r, 1000));
    }
    t.deepEqual(running, ['hello/sleeper', 'web/httpd'], console());
    // The layer installed at run time has a domain and a category pair of its own.
    const units = (
      jsonOut(
        (await mway('service', '--group', 'qemu', 'list', '--timeout', '180', '--json', '--static')).stdout,
      ) as List
    ).peers[0]?.output;
    const hello = units?.find((u) => u.name === 'hello/sleeper')?.selinux;
    const webNow = units?.find((u) => u.name === 'web/httpd')?.selinux;
    t.regex(hello?.context ?? '', /^system_u:system_r:mway_hello_t:s0:c\d+,c\d+$/, JSON.stringify(units));
    t.not(hello?.level, webNow?.level, 'two layers, two pairs');
    t.deepEqual(hello?.running, [hello?.context]);

    // A layer whose module breaks a neverallow (read the agent's data), packed with a secilc that
    // accepts anything as a packager who skipped `mway-layer pack`'s check would: the guest's own
    // secilc refuses it, and the loaded policy is the same bytes after (its sha256 in the status).
    const policyNow = async (): Promise<Selinux['policy']> => {
      const r = await mway('status', '--peer', 'qemu1', '--timeout', '180', '--json', '--static');
      return (jsonOut(r.stdout) as typeof st).peers[0]?.output.agent.selinux.policy;
    };
    const policyBefore = await policyNow();
    t.like(policyBefore, { layers: 2 }, 'web and hello');
    const bad = join(dir, 'bad');
    await mkdir(join(bad, 'rootfs'), { recursive: true });
    await writeFile(join(bad, 'rootfs', 'x.txt'), 'x\n');
    await writeFile(
      join(bad, 'layer.json'),
      JSON.stringify({
        name: 'bad',
        version: '1.0.0',
        kind: 'app',
        services: [{ name: 'reader', execStart: ['/bin/busybox', 'sleep', '100000'] }],
      }),
    );
    await writeFile(join(bad, 'policy.cil'), '(allow mway_bad_t milkyway_agent_data_t (file (read open)))\n');
    const shim = join(dir, 'shim');
    await mkdir(shim, { recursive: true });
    await writeFile(
      join(shim, 'secilc'),
      '#!/bin/sh\n# accepts any policy: writes empty outputs and succeeds\nwhile [ $# -gt 0 ]; do case "$1" in -o|-f) : > "$2"; shift ;; esac; shift; done\n',
      { mode: 0o755 },
    );
    const badMwl = join(dir, 'bad.mwl');
    const packed = await cli(
      'mway-layer',
      ['pack', bad, '--key', join(keysDir, 'user.key'), '--cert', join(keysDir, 'user.crt'), '-o', badMwl],
      { env: { PATH: `${shim}:${process.env.PATH ?? ''}` } },
    );
    t.is(packed.exitCode, 0, packed.stderr);
    const refused = await mway(
      'install',
      '--group',
      'qemu',
      badMwl,
      '--timeout',
      '240',
      '--json',
      '--static',
    );
    t.is(refused.exitCode, 1, refused.stdout + refused.stderr);
    const rr = jsonOut(refused.stdout) as {
      peers: Array<{ outcome: string; code?: string; message?: string }>;
    };
    t.like(rr.peers[0], { outcome: 'failed', code: 'E_POLICY_INVALID' }, refused.stdout);
    t.regex(rr.peers[0]?.message ?? '', /neverallow/);
    t.deepEqual(await policyNow(), policyBefore, 'the running policy is unchanged');

    // Reboot: the agent answers, shuts down in order, the guest boots again from the same disk
    // (writes kept for the life of this QEMU), reconnects, and the installed layer is back.
    const mark = b.lines.length;
    const reboot = await mway('reboot', '--peer', 'qemu1', '--timeout', '180', '--json', '--static');
    t.is(reboot.exitCode, 0, reboot.stdout + reboot.stderr + console());
    t.truthy(await b.until(/shutdown done \(reboot\)/, mark), console());
    const t2 = Date.now();
    const relinked = await b.until(/control: connected to broker 10\.0\.2\.2:\d+ as qemu1/, mark);
    t.truthy(relinked, console());
    t.truthy(await b.until(/boot done: 2 services \(0 failed\), 0 layers refused/, mark), console());
    t.log(`guest rebooted and reconnected in ${((Date.now() - t2) / 1000).toFixed(1)} s`);
    running = [];
    for (let i = 0; i < 30 && running.length < 2; i++) {
      running = await listed();
      if (running.length < 2) await new Promise((r) => setTimeout(r, 1000));
    }
    t.deepEqual(running, ['hello/sleeper', 'web/httpd'], console());

    const off = await mway('poweroff', '--peer', 'qemu1', '--timeout', '180', '--json', '--static');
    t.is(off.exitCode, 0, off.stdout + off.stderr + console());
    const end = await q.done;
    t.true(end.poweredOff, end.tail.join('\n'));
    t.true(
      b.lines.some((l) => l.includes('shutdown done (poweroff)')),
      console(),
    );
    t.log(`whole run ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  },
);
