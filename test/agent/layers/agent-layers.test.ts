// The agent with real signed layers in namespace mode: verification, refusal, overlay
// roots, data directory isolation, install/remove at runtime over D-Bus, and a SIGKILL in
// the middle of an install.

import { chmod, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { startBusDaemon, writeBusConfig } from '../../../agent/dbus/dbus-daemon.ts';
import { cli, jsonOut, tempDir } from '../../helpers.ts';
import { buildTestLayer, untrustedSigner } from '../_layers.ts';
import { makePki, makeRoot, startAgent } from '../_namespace.ts';

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

const LOOK =
  'echo uid=$(id -u); ls /data; ls /data/group; cat /etc/mwl-marker; cat /usr/share/libx/version; ' +
  'echo secret > /data/secure/mine && echo wrote-secure; ' +
  'echo shared > /data/group/shop/from-web && echo wrote-group; ' +
  'ls /data/secure; exec sleep 600';

test('agent: verifies and activates layers, refuses a bad one, runs app services on their overlay with only their own data', async (t) => {
  const pki = await makePki(t);
  const r = await makeRoot(t, pki, { secure: { v: 1, groups: { shop: { gid: 5000, layers: ['web'] } } } });
  const layers = join(r.root, 'layers');
  await buildTestLayer(
    pki,
    {
      name: 'libx',
      kind: 'library',
      files: { 'usr/share/libx/version': 'libx 1\n', 'etc/mwl-marker': 'libx marker\n' },
    },
    join(layers, 'libx.mwl'),
  );
  await buildTestLayer(
    pki,
    {
      name: 'web',
      kind: 'app',
      dependencies: ['libx'],
      data: { groups: ['shop'] },
      files: { 'etc/mwl-marker': 'web payload\n' },
      services: [{ name: 'main', execStart: ['/bin/sh', '-c', LOOK] }],
    },
    join(layers, 'web.mwl'),
  );
  await buildTestLayer(
    pki,
    {
      name: 'other',
      kind: 'app',
      files: { 'etc/mwl-marker': 'other\n' },
      services: [{ name: 'main', execStart: ['/bin/sh', '-c', 'exec sleep 600'] }],
    },
    join(layers, 'other.mwl'),
  );
  // Signed by a trusted key, but one payload byte flipped after packing: the full userspace
  // check must refuse it (the kernel's dm-verity does this in the guest; build-e2e).
  const tampered = join(layers, 'tampered.mwl');
  await buildTestLayer(
    pki,
    {
      name: 'tampered',
      kind: 'app',
      files: { 'etc/mwl-marker': 'tampered\n' },
      services: [{ name: 'main', execStart: ['/bin/true'] }],
    },
    tampered,
  );
  {
    const { readLayer } = await import('../../../layers/index.ts');
    const { open } = await import('node:fs/promises');
    const l = await readLayer(tampered);
    const fh = await open(tampered, 'r+');
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, l.payloadOffset + 1024);
    b[0] = (b[0] ?? 0) ^ 0x40;
    await fh.write(b, 0, 1, l.payloadOffset + 1024);
    await fh.close();
  }
  await buildTestLayer(
    await untrustedSigner(t),
    { name: 'evil', kind: 'app', files: { x: 'y' }, services: [{ name: 'main', execStart: ['/bin/true'] }] },
    join(layers, 'evil.mwl'),
  );
  const address = await bus(t);
  const { writeFile, readFile } = await import('node:fs/promises');
  const cfg = JSON.parse(await readFile(r.configPath, 'utf8')) as Record<string, unknown>;
  await writeFile(r.configPath, JSON.stringify({ ...cfg, dbus: { address } }));
  const a = startAgent(t, r);
  await a.waitFor(/boot done: 2 services \(0 failed\), 2 layers refused/, 60_000);
  await a.waitFor(/serving org\.milkyway\.Agent1/);
  const list = (await ctl(address, 'list')) as {
    layers: { name: string; state: string; error?: { code: string } }[];
  };
  const byName = Object.fromEntries(list.layers.map((l) => [l.name, l]));
  t.is(byName.web?.state, 'active');
  t.is(byName.libx?.state, 'active');
  t.is(byName.evil?.state, 'refused');
  t.truthy(byName.evil?.error?.code);
  t.is(byName.tampered?.state, 'refused');
  t.is(byName.tampered?.error?.code, 'E_PAYLOAD_DIGEST');
  t.regex(a.output(), /runtime integrity is not enforced/);
  const logs = (await ctl(address, 'logs', 'web/main')) as { text: string }[];
  const text = logs.map((l) => l.text).join('\n');
  t.regex(text, /uid=6\d{4}/);
  t.regex(text, /web payload/); // the app's file is above the library's
  t.notRegex(text, /libx marker/);
  t.regex(text, /libx 1/);
  t.regex(text, /wrote-secure/);
  t.regex(text, /^shop$/m);
  // Group data is shared through the group's gid: a non-root service writes there.
  t.regex(text, /wrote-group/);
  const shared = await stat(join(r.root, 'data', 'group', 'shop', 'from-web'));
  t.is(shared.gid, 5000, 'setgid directory: the file belongs to the group, not the layer');
  // The secure directory: 0700, owned by the layer's uid; the other app's is not visible.
  const web = await stat(join(r.root, 'data', 'secure', 'web'));
  t.is(web.mode & 0o777, 0o700);
  t.true(web.uid >= 61184);
  t.deepEqual(await readdir(join(r.root, 'data', 'secure', 'web')), ['mine']);
  t.notRegex(text, /other/);
  await a.kill('SIGTERM');
  t.is(await a.exit, 0);
});

test('agent: installs, upgrades and removes a layer at runtime (ctl over D-Bus); a SIGKILL mid-install leaves the previous state usable', async (t) => {
  const pki = await makePki(t);
  const r = await makeRoot(t, pki);
  const build = await tempDir(t);
  const svc = (v: string) => [
    { name: 'main', execStart: ['/bin/sh', '-c', `echo running ${v}; exec sleep 600`] },
  ];
  await buildTestLayer(
    pki,
    { name: 'web', kind: 'app', services: svc('v1') },
    join(r.root, 'layers', 'web.mwl'),
  );
  await buildTestLayer(
    pki,
    { name: 'web', kind: 'app', version: '2.0.0', services: svc('v2') },
    join(build, 'web2.mwl'),
  );
  // Big enough that copying and the userspace verity check take a while.
  const { randomBytes } = await import('node:crypto');
  await buildTestLayer(
    pki,
    {
      name: 'web',
      kind: 'app',
      version: '3.0.0',
      services: svc('v3'),
      files: { blob: randomBytes(96 << 20).toString('base64') },
    },
    join(build, 'web3.mwl'),
  );
  await buildTestLayer(pki, { name: 'api', kind: 'app', services: svc('api') }, join(build, 'api.mwl'));
  const address = await bus(t);
  const { writeFile, readFile } = await import('node:fs/promises');
  const cfg = JSON.parse(await readFile(r.configPath, 'utf8')) as Record<string, unknown>;
  await writeFile(r.configPath, JSON.stringify({ ...cfg, dbus: { address } }));

  const a = startAgent(t, r);
  await a.waitFor(/serving org\.milkyway\.Agent1/, 60_000);
  // A service is ready once its sandbox exists; its first line may come a moment later.
  const logsOf = async (name: string, want?: RegExp) => {
    let text = '';
    for (let i = 0; i < 50; i++) {
      text = ((await ctl(address, 'logs', name)) as { text: string }[]).map((l) => l.text).join('\n');
      if (want === undefined || want.test(text)) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    return text;
  };
  t.regex(await logsOf('web/main', /running v1/), /running v1/);
  // Install a new layer and upgrade an existing one.
  await ctl(address, 'install', join(build, 'api.mwl'));
  t.regex(await logsOf('api/main', /running api/), /running api/);
  await ctl(address, 'install', join(build, 'web2.mwl'));
  t.regex(await logsOf('web/main', /running v2/), /running v2/);
  const list = (await ctl(address, 'list')) as { layers: { name: string; version: string }[] };
  t.deepEqual(list.layers.map((l) => `${l.name}@${l.version}`).sort(), ['api@1.0.0', 'web@2.0.0']);
  await ctl(address, 'remove', 'api');
  t.deepEqual(
    (await readdir(join(r.root, 'layers'))).filter((f) => !f.startsWith('.')),
    ['web.mwl'],
  );

  // SIGKILL while the big upgrade is being copied/verified.
  const installing = cli('milkyway-agent', ['ctl', 'install', join(build, 'web3.mwl'), '--bus', address], {
    timeout: 120_000,
  });
  const staging = join(r.root, 'layers', '.staging');
  let seen = false;
  for (let i = 0; i < 2000 && !seen; i++) {
    seen = (await readdir(staging).catch(() => [])).length > 0;
    if (!seen) await new Promise((res) => setTimeout(res, 5));
  }
  t.true(seen, 'the install reached staging');
  await a.kill('SIGKILL');
  await a.exit;
  t.not((await installing).exitCode, 0);

  const b = startAgent(t, r);
  await b.waitFor(/boot done: 1 services \(0 failed\), 0 layers refused/, 60_000);
  t.regex(b.output(), /removed 1 half-written install/);
  await b.waitFor(/serving org\.milkyway\.Agent1/);
  t.regex(await logsOf('web/main', /running v2/), /running v2/);
  t.deepEqual(await readdir(staging), []);
  await b.kill('SIGTERM');
  t.is(await b.exit, 0);
});
