// QEMU TEST (SLOW: TCG only, one boot of ~3–6 min on 2 cores). The same `mway` commands that
// drive namespace-mode agents reach the agent running as real PID 1 inside the guest: the
// image carries a peer identity (peer-identity partition, mounted at /identity) and an agent
// `control` section naming the broker as 10.0.2.2:PORT, which QEMU's user network maps to
// the host's loopback, where `milkywaysrvd` listens on 127.0.0.1. The test drives `mway
// peers`, `mway status --peer`, `mway service … status|restart` of the example layer's
// service, and `mway poweroff`, after which QEMU must exit on its own (the agent's orderly
// shutdown ends in a real poweroff). QEMU and the broker are killed in teardown.
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { buildImage } from '../../imagebuild/disk-build.ts';
import { loadImageKeys } from '../../imagebuild/dev-keys.ts';
import { loadImageSpec } from '../../imagebuild/image-spec.ts';
import { type QemuRun, runQemu } from '../../imagebuild/qemu-run.ts';
import { newIdentity, readPrivateKey } from '../../keys/index.ts';
import { BINS, cli, ROOT, tempDir } from '../helpers.ts';

const BOOT_MS = 9 * 60_000;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Starts milkywaysrvd as a real process; resolves once it printed where it listens. */
async function startBroker(t: ExecutionContext, config: string): Promise<{ lines: string[] }> {
  const proc = execa(process.execPath, [BINS.milkywaysrvd, '--config', config, '--json'], {
    reject: false,
    timeout: BOOT_MS + 240_000,
    buffer: false,
  });
  t.teardown(() => {
    proc.kill('SIGKILL');
  });
  const lines: string[] = [];
  proc.stderr?.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('milkywaysrvd did not start in 20 s')), 20_000);
    proc.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\n')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void proc.then((r) => {
      clearTimeout(timer);
      reject(new Error(`milkywaysrvd exited ${String(r.exitCode)}: ${lines.join('\n')}`));
    });
  });
  return { lines };
}

/** Boots `disk` with no forwards; `until(re)` resolves the first console line matching. */
function boot(t: ExecutionContext, disk: string) {
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (l: string | undefined) => void }[] = [];
  let ended = false;
  const started = runQemu({
    disk,
    timeout: BOOT_MS,
    serial: 'none',
    snapshot: true,
    onLine: (l) => {
      lines.push(l);
      for (const w of waiters.splice(0)) {
        if (w.re.test(l)) w.resolve(l);
        else waiters.push(w);
      }
    },
  }).then((r: QemuRun) => {
    t.teardown(() => r.kill());
    void r.done.then(() => {
      ended = true;
      for (const w of waiters.splice(0)) w.resolve(undefined);
    });
    return r;
  });
  return {
    lines,
    started,
    until(re: RegExp): Promise<string | undefined> {
      const hit = lines.find((l) => re.test(l));
      if (hit !== undefined || ended) return Promise.resolve(hit);
      return new Promise((resolve) => waiters.push({ re, resolve }));
    },
  };
}

test.serial(
  'QEMU: mway peers/status/service/poweroff reach the agent (real PID 1) in the guest through the broker on the host loopback',
  async (t) => {
    t.timeout(BOOT_MS + 300_000);
    const dir = await tempDir(t, 'mway-fleet-qemu-');
    // The image's own development PKI; the broker, operator and peer are issued by its user root.
    const keysDir = join(dir, 'keys');
    await loadImageKeys(keysDir, { generate: true });
    const rootKey = await readPrivateKey(join(keysDir, 'user-root.key'));
    const { readCertificates } = await import('../../keys/index.ts');
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
        secureConfig: { hostname: 'qemu1', groups: {}, allowLayers: ['web'] },
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
    const srv = await startBroker(t, brokerConfig);
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
    const b = boot(t, built.disk);
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
    const list = JSON.parse(peers.stdout) as Array<{ peerId: string; online: boolean }>;
    t.deepEqual(
      list.map((p) => [p.peerId, p.online]),
      [['qemu1', true]],
    );

    const status = await mway('status', '--peer', 'qemu1', '--timeout', '180', '--json');
    t.is(status.exitCode, 0, status.stdout + status.stderr + console());
    const st = JSON.parse(status.stdout) as {
      peers: Array<{ peer: string; outcome: string; output: { agent: { mode: string } } }>;
    };
    t.deepEqual(
      st.peers.map((p) => [p.peer, p.outcome, p.output.agent.mode]),
      [['qemu1', 'ok', 'pid1']],
    );

    type Svc = { peers: Array<{ peer: string; outcome: string; output: { state: string; pid?: number } }> };
    const service = async (verb: string): Promise<Svc['peers'][number] | undefined> => {
      const r = await mway('service', '--peer', 'qemu1', verb, 'web/httpd', '--timeout', '180', '--json');
      t.is(r.exitCode, 0, `${verb}: ${r.stdout}${r.stderr}\n${console()}`);
      return (JSON.parse(r.stdout) as Svc).peers[0];
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

    const off = await mway('poweroff', '--peer', 'qemu1', '--timeout', '180', '--json');
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
