// The agent under a hostile layers partition and a damaged CRL directory (issue 12), in
// namespace mode with the userspace verity path: a FIFO, a symlink, a directory and a truncated
// file named `*.mwl`, 10,000 junk files (1,000 of them named `*.mwl`), a layer whose payload
// is changed on the partition after it was verified, and a damaged CRL next to a FIFO named
// `*.crl`. The agent boots, refuses each with its code (ctl status / list), keeps the last good
// CRL list rather than none, and runs the good layers on the bytes it verified.

import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { startBusDaemon, writeBusConfig } from '../../../agent/dbus/dbus-daemon.ts';
import { crlPem, issueCrl, newIdentity, readCertificates, readPrivateKey } from '../../../keys/index.ts';
import { readLayer } from '../../../layers/index.ts';
import { cli, jsonOut, tempDir } from '../../helpers.ts';
import { buildTestLayer } from '../_layers.ts';
import { makePki, makeRoot, type RunningAgent, startAgent } from '../_namespace.ts';

interface Status {
  state: string;
  crls: { count: number; source: string; problems: { path: string; code: string }[] };
  layers: { active: number; refused: number };
  warnings: string[];
}
interface Layer {
  name: string;
  state: string;
  error?: { code: string };
}

async function bus(t: Parameters<typeof tempDir>[0]): Promise<string> {
  const dir = await tempDir(t, 'mway-dbus-');
  await chmod(dir, 0o755);
  const configFile = join(dir, 'bus.conf');
  const address = await writeBusConfig({ configFile, socketPath: join(dir, 'bus') });
  const daemon = await startBusDaemon({ configFile });
  t.teardown(() => daemon.stop());
  return address;
}

async function ctl(address: string, ...args: string[]): Promise<unknown> {
  const r = await cli('milkyway-agent', ['ctl', ...args, '--json', '--bus', address], { timeout: 120_000 });
  if (r.exitCode !== 0) throw new Error(`ctl ${args.join(' ')} failed: ${r.stdout}${r.stderr}`);
  return jsonOut(r.stdout);
}

async function boot(t: Parameters<typeof tempDir>[0], root: Parameters<typeof startAgent>[1]) {
  const started = Date.now();
  const a = startAgent(t, root);
  const done = await a.waitFor(/boot done: [^\n]*/, 240_000);
  const ms = Date.now() - started;
  await a.waitFor(/serving org\.milkyway\.Agent1/, 60_000);
  return { a, done, ms };
}

async function stop(a: RunningAgent): Promise<number | null> {
  await a.kill('SIGTERM');
  return a.exit;
}

test('agent: a hostile layers partition and a damaged CRL are each refused with their code; the last good CRL list and the verified bytes stay in force', async (t) => {
  const pki = await makePki(t);
  // A second user, revoked by the root's CRL, signs one layer: refused while the CRL is in force.
  const rootKey = await readPrivateKey(join(pki.dir, 'root.key'));
  const [rootCert] = await readCertificates(pki.rootCert);
  if (rootCert === undefined) return t.fail('no root certificate');
  const revoked = await newIdentity({
    role: 'user',
    name: 'revoked',
    outDir: pki.dir,
    issuerKey: rootKey,
    issuerCert: rootCert,
  });
  const [revokedCert] = await readCertificates(revoked.certPath);
  const crl = await issueCrl({
    issuerKey: rootKey,
    issuerCert: rootCert,
    serials: [revokedCert?.serial ?? ''],
  });

  const r = await makeRoot(t, pki);
  const address = await bus(t);
  const cfg = JSON.parse(await readFile(r.configPath, 'utf8')) as Record<string, unknown>;
  await writeFile(r.configPath, JSON.stringify({ ...cfg, dbus: { address } }));
  const layers = join(r.root, 'layers');
  const certs = join(r.root, 'certs');
  await writeFile(join(certs, 'user-root.crl'), crlPem(crl));
  await buildTestLayer(
    pki,
    {
      name: 'web',
      kind: 'app',
      files: { 'etc/marker': 'web payload\n' },
      services: [{ name: 'main', execStart: ['/bin/sh', '-c', 'cat /etc/marker; exec sleep 600'] }],
    },
    join(layers, 'web.mwl'),
  );
  // Its service reads the marker only once told to (a file in its own data directory), so the
  // read comes after the change made to the partition below.
  // Exactly 1 MiB, so erofs packs no tail into its metadata block (which the mount reads, and
  // caches, at once): the bytes to change are in the file's first data block, read only by the service.
  const marker = `the verified bytes of flip\n${'filler of flip '.repeat(70_000)}`.slice(0, 1 << 20);
  await buildTestLayer(
    pki,
    {
      name: 'flip',
      kind: 'app',
      files: { 'etc/marker': marker },
      services: [
        {
          name: 'main',
          execStart: [
            '/bin/sh',
            '-c',
            'while [ ! -e /data/secure/go ]; do sleep 0.2; done; md5sum /etc/marker; exec sleep 600',
          ],
        },
      ],
    },
    join(layers, 'flip.mwl'),
  );
  await buildTestLayer(
    { userKeyPath: revoked.keyPath, userCertPath: revoked.certPath },
    {
      name: 'revokedapp',
      kind: 'app',
      files: { x: 'y' },
      services: [{ name: 'main', execStart: ['/bin/true'] }],
    },
    join(layers, 'revokedapp.mwl'),
  );

  // Boot 1: a clean partition. The CRL is good and becomes the last good list.
  const first = await boot(t, r);
  t.regex(first.done, /2 services \(0 failed\), 1 layers refused/);
  const s1 = (await ctl(address, 'status')) as Status;
  t.like(s1.crls, { count: 1, source: 'partition', problems: [] });
  t.is(await stop(first.a), 0);

  // The hostile partition.
  await execa('mkfifo', [join(layers, 'fifo.mwl')]);
  await symlink('web.mwl', join(layers, 'link.mwl'));
  await mkdir(join(layers, 'dir.mwl'));
  await buildTestLayer(pki, { name: 'trunc', kind: 'app', files: { a: 'b' } }, join(layers, 'trunc.mwl'));
  await truncate(join(layers, 'trunc.mwl'), 3000);
  for (let i = 0; i < 10_000; i++) {
    const name = i % 10 === 0 ? `junk-${i}.mwl` : `junk-${i}.${i % 3 === 0 ? 'bin' : 'tmp'}`;
    await writeFile(join(layers, name), randomBytes(64 + (i % 512)));
  }
  // The CRL directory: the good CRL damaged in its signature, and a FIFO named like a CRL.
  const der = Buffer.from(crl.der);
  der[der.length - 10] = (der[der.length - 10] as number) ^ 0x01;
  await writeFile(join(certs, 'user-root.crl'), crlPem({ ...crl, der: new Uint8Array(der) }));
  await execa('mkfifo', [join(certs, 'fifo.crl')]);

  const second = await boot(t, r);
  t.log(
    `boot with the clean partition: ${first.ms} ms; with the hostile one (10,000 junk files): ${second.ms} ms`,
  );
  const s2 = (await ctl(address, 'status')) as Status;
  // The last good list is kept: the revoked signer's layer is still refused as revoked.
  t.is(s2.crls.source, 'partition+last-good');
  t.is(s2.crls.count, 1);
  const crlCodes = Object.fromEntries(s2.crls.problems.map((p) => [p.path.split('/').pop(), p.code]));
  t.deepEqual(crlCodes, { 'fifo.crl': 'E_NOT_REGULAR_FILE', 'user-root.crl': 'E_CRL_SIGNATURE' });
  t.true(s2.warnings.some((w) => /CRL .*user-root\.crl refused: E_CRL_SIGNATURE/.test(w)));
  const list = (await ctl(address, 'list')) as { layers: Layer[] };
  const by = Object.fromEntries(list.layers.map((l) => [l.name, l]));
  t.is(by.web?.state, 'active');
  t.is(by.flip?.state, 'active');
  t.like(by.revokedapp, { state: 'refused', error: { code: 'E_CERT_REVOKED' } });
  t.like(by.fifo, { state: 'refused', error: { code: 'E_NOT_REGULAR_FILE' } });
  t.like(by.link, { state: 'refused', error: { code: 'E_NOT_REGULAR_FILE' } });
  t.like(by.dir, { state: 'refused', error: { code: 'E_NOT_REGULAR_FILE' } });
  t.like(by.trunc, { state: 'refused', error: { code: 'E_LAYER_TRUNCATED' } });
  const junk = list.layers.filter((l) => l.name.startsWith('junk-'));
  t.is(junk.length, 1000);
  t.true(
    junk.every(
      (l) => l.state === 'refused' && typeof l.error?.code === 'string' && l.error.code.startsWith('E_'),
    ),
  );
  t.is(s2.layers.active, 2);
  t.is(s2.layers.refused, 1005);
  // Payloads and app roots are mounted read-only, nodev and nosuid (the agent's mount namespace).
  const mounts = (await readFile(`/proc/${await second.a.hostPid()}/mounts`, 'utf8')).split('\n');
  const payload = mounts.filter((m) => / erofs /.test(m) && m.includes(join(r.root, 'run', 'layers')));
  t.is(payload.length, 2, mounts.join('\n'));
  for (const m of payload) t.regex(m.split(' ')[3] ?? '', /^(?=.*\bro\b)(?=.*\bnosuid\b)(?=.*\bnodev\b)/, m);
  const roots = mounts.filter((m) => m.startsWith('mwl-web ') || m.startsWith('mwl-flip '));
  t.is(roots.length, 2, mounts.join('\n'));
  for (const m of roots) t.regex(m.split(' ')[3] ?? '', /^(?=.*\bro\b)(?=.*\bnosuid\b)(?=.*\bnodev\b)/, m);

  // Change the marker's bytes on the partition after the agent verified the layer: the running
  // layer is the verified private copy, so its service still reads the original bytes.
  const l = await readLayer(join(layers, 'flip.mwl'));
  const mwl = await readFile(join(layers, 'flip.mwl'));
  const at = mwl.indexOf(Buffer.from('the verified bytes of flip'), l.payloadOffset);
  t.true(at > l.payloadOffset);
  const fh = await open(join(layers, 'flip.mwl'), 'r+');
  await fh.write(Buffer.from('THE'), 0, 3, at);
  // On the disk, not only in the page cache: a loop device may read the file with direct I/O.
  await fh.sync();
  await fh.close();
  await writeFile(join(r.root, 'data', 'secure', 'flip', 'go'), '');
  const { createHash } = await import('node:crypto');
  const want = createHash('md5').update(marker).digest('hex');
  let text = '';
  for (let i = 0; i < 150 && !text.includes('/etc/marker'); i++) {
    await new Promise((res) => setTimeout(res, 200));
    text = ((await ctl(address, 'logs', 'flip/main')) as { text: string }[]).map((x) => x.text).join('\n');
  }
  t.regex(text, new RegExp(`^${want}  /etc/marker$`, 'm'), 'the service read the bytes that were verified');
  t.is(await stop(second.a), 0);

  // The next boot checks the partition again and refuses the changed layer with its code.
  const third = await boot(t, r);
  const list3 = (await ctl(address, 'list')) as { layers: Layer[] };
  const flip = list3.layers.find((x) => x.name === 'flip');
  t.like(flip, { state: 'refused', error: { code: 'E_PAYLOAD_DIGEST' } });
  t.is(list3.layers.find((x) => x.name === 'web')?.state, 'active');
  t.is(await stop(third.a), 0);
});
