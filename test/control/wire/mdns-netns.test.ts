// mDNS discovery across two network namespaces joined by a veth pair: the broker runs in
// one, a peer in the other finds it by `_milkyway._tcp`, pins the TXT fingerprint and
// connects with mutual TLS. Needs root (ip netns); the namespaces are deleted afterwards.
import test from 'ava';
import { execa } from 'execa';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { run } from '../../../common/exec.ts';
import { BINS, jsonOut, ROOT, tempDir } from '../../helpers.ts';
import { type Ident, makeFleetPki } from '../broker-fixture.ts';
import { vethPair } from '../netns-fixture.ts';

test('a peer in another network namespace finds the broker by mDNS and connects to it', async (t) => {
  const dir = await tempDir(t);
  const pki = await makeFleetPki(1, dir);
  const peer = pki.peers[0] as Ident;
  const [nsA, nsB] = await vethPair(t, 'mw', 231);
  const config = join(dir, 'broker.json');
  await writeFile(
    config,
    JSON.stringify({
      listen: '0.0.0.0:7443',
      key: pki.broker.keyPath,
      certificate: pki.broker.certPath,
      anchors: [pki.root.certPath],
      database: join(dir, 'broker.db'),
      mdns: { enabled: true, name: 'test-broker' },
    }),
  );
  const broker = execa(
    'ip',
    ['netns', 'exec', nsA, process.execPath, BINS.milkywaysrvd, '--config', config, '--json'],
    {
      reject: false,
      timeout: 60_000,
      buffer: false,
    },
  );
  t.teardown(() => {
    broker.kill('SIGKILL');
  });
  const started = await new Promise<{ fingerprint: string; mdns: boolean }>((resolve, reject) => {
    let buf = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`broker did not start: ${err}`)), 20_000);
    broker.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    broker.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\n')) {
        clearTimeout(timer);
        resolve(jsonOut(buf.slice(0, buf.indexOf('\n'))));
      }
    });
  });
  t.true(started.mdns);
  t.is(started.fingerprint, pki.broker.cert.fingerprint);

  const script = join(dir, 'find.mts');
  const url = (p: string) => pathToFileURL(join(ROOT, p)).href;
  await writeFile(
    script,
    `import { browseBroker } from '${url('control/wire/mdns.ts')}';
import { connectBroker } from '${url('control/wire/transport.ts')}';
import { readCertificates, tlsContextOptions } from '${url('keys/index.ts')}';
const found = await browseBroker({ timeoutMs: 8000 });
if (found === undefined) { console.log(JSON.stringify({ found: null })); process.exit(0); }
const anchors = await readCertificates(${JSON.stringify(pki.root.certPath)});
const c = await connectBroker({ address: found.address, role: 'peer', brokerFingerprint: found.fingerprint,
  tls: tlsContextOptions({ keyPath: ${JSON.stringify(peer.keyPath)}, certPath: ${JSON.stringify(peer.certPath)}, anchors }) });
console.log(JSON.stringify({ found, identity: c.welcome.identity, kx: c.connection.keyExchange() }));
c.close();
process.exit(0);
`,
  );
  const r = await run('ip', ['netns', 'exec', nsB, process.execPath, script], {
    timeout: 30_000,
    reject: false,
  });
  t.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() as string) as {
    found: { address: string; fingerprint: string; name: string } | null;
    identity: string;
    kx: string;
  };
  t.truthy(out.found, 'nothing answered the mDNS query');
  t.is(out.found?.address, '10.231.0.1:7443');
  t.is(out.found?.fingerprint, pki.broker.cert.fingerprint);
  t.is(out.found?.name, 'test-broker');
  t.is(out.identity, 'peer-1');
  t.is(out.kx, 'X25519MLKEM768');
});
