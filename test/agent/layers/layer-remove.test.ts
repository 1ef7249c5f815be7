// Removing a layer at runtime (namespace mode, ctl over D-Bus): a library an app runs on only
// through another library is refused (the whole dependency closure counts), and a remove whose
// unmount fails is reported with E_LAYER_UNMOUNT and changes nothing — the layer stays
// installed, its root is mounted again and its service runs.

import { chmod, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { startBusDaemon, writeBusConfig } from '../../../agent/dbus/dbus-daemon.ts';
import { cli, jsonOut, tempDir } from '../../helpers.ts';
import { buildTestLayer } from '../_layers.ts';
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

/** `milkyway-agent ctl … --json`: the exit code and the parsed output. */
async function ctl(
  address: string,
  ...args: string[]
): Promise<{ exitCode: number; out: Record<string, unknown> }> {
  const r = await cli('milkyway-agent', ['ctl', ...args, '--json', '--bus', address], { timeout: 300_000 });
  return { exitCode: r.exitCode, out: jsonOut(r.stdout) as Record<string, unknown> };
}

/** Mount points of the agent's mount namespace (paths as the agent sees them). */
async function mountsOf(pid: number): Promise<string[]> {
  return (await readFile(`/proc/${pid}/mountinfo`, 'utf8'))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split(' ')[4] ?? '');
}

test('remove: a library used through another library is in use; a busy unmount fails with E_LAYER_UNMOUNT and changes nothing', async (t) => {
  const pki = await makePki(t);
  const r = await makeRoot(t, pki);
  const layers = join(r.root, 'layers');
  await buildTestLayer(
    pki,
    { name: 'libb', kind: 'library', files: { 'usr/share/libb': 'b\n' } },
    join(layers, 'libb.mwl'),
  );
  await buildTestLayer(
    pki,
    { name: 'liba', kind: 'library', dependencies: ['libb'], files: { 'usr/share/liba': 'a\n' } },
    join(layers, 'liba.mwl'),
  );
  await buildTestLayer(
    pki,
    {
      name: 'app',
      kind: 'app',
      dependencies: ['liba'],
      services: [{ name: 'main', execStart: ['/bin/sh', '-c', 'cat /usr/share/libb; exec sleep 600'] }],
    },
    join(layers, 'app.mwl'),
  );
  const address = await bus(t);
  const cfg = JSON.parse(await readFile(r.configPath, 'utf8')) as Record<string, unknown>;
  await writeFile(r.configPath, JSON.stringify({ ...cfg, dbus: { address } }));
  const a = startAgent(t, r);
  await a.waitFor(/serving org\.milkyway\.Agent1/, 120_000);
  const pid = await a.hostPid();
  const state = async () => {
    const status = (await ctl(address, 'status', 'app/main')).out as { state?: string };
    const list = (await ctl(address, 'list')).out as { layers: { name: string; state: string }[] };
    return { service: status.state, layers: list.layers.map((l) => `${l.name}:${l.state}`).sort() };
  };
  const before = await state();
  t.deepEqual(before.layers, ['app:active', 'liba:active', 'libb:active']);

  // libb is not in app's manifest, only in liba's: still in use.
  const indirect = await ctl(address, 'remove', 'libb');
  t.is(indirect.exitCode, 1);
  t.like(indirect.out, { ok: false, error: { code: 'E_LAYER_IN_USE' } });
  t.regex(String((indirect.out.error as { message: string }).message), /used by app/);
  t.like(await ctl(address, 'remove', 'liba'), { exitCode: 1, out: { error: { code: 'E_LAYER_IN_USE' } } });

  // A process of the test sits in app's payload mount (its cwd): the root unmounts, the
  // payload cannot. The remove must fail, remount the root and start the service again.
  const payload = (await mountsOf(pid)).find((m) => m.endsWith('/layers/app'));
  t.truthy(payload, 'the payload mount point of app');
  const rootBefore = (await mountsOf(pid)).filter((m) => m.includes('app') && m !== payload);
  const holder = execa(
    'nsenter',
    ['-t', String(pid), '-m', '--', 'sh', '-c', `cd "${payload}" && exec sleep 600`],
    {
      reject: false,
    },
  );
  t.teardown(() => {
    holder.kill('SIGKILL');
  });
  await new Promise((res) => setTimeout(res, 500));
  const busy = await ctl(address, 'remove', 'app');
  t.is(busy.exitCode, 1);
  t.like(busy.out, { ok: false, error: { code: 'E_LAYER_UNMOUNT' } });
  t.regex(String((busy.out.error as { message: string }).message), /payload of app/);
  t.deepEqual(await state(), before, 'nothing changed: layers active, the service running');
  t.deepEqual(
    (await mountsOf(pid)).filter((m) => m.includes('app') && m !== payload),
    rootBefore,
    'the app root is mounted again',
  );
  t.true((await readdir(layers)).includes('app.mwl'));

  // Once nothing holds it, the same remove goes through, and then the libraries are free.
  holder.kill('SIGKILL');
  await holder;
  t.like(await ctl(address, 'remove', 'app'), { exitCode: 0 });
  t.like(await ctl(address, 'remove', 'liba'), { exitCode: 0 });
  t.like(await ctl(address, 'remove', 'libb'), { exitCode: 0 });
  t.deepEqual(
    (await readdir(layers)).filter((f) => !f.startsWith('.')),
    [],
  );
  await a.kill('SIGTERM');
  t.is(await a.exit, 0);
});
