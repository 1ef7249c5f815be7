// A key-value cache from its container image, unedited: Debian's redis-server installed by
// mmdebstrap, made an OCI image by umoci with a config like the official redis image's
// (Cmd redis-server, WorkingDir and Volume /data, ExposedPorts 6379/tcp; User redis from the
// image's own /etc/passwd where the official image drops to it with gosu), imported with
// importOci and run by the agent as PID 1 of a namespace with a network of its own. Checked
// with the image's own redis-cli (Debian's redis-tools) in the service's namespaces: PING, a
// SET kept by SAVE in the volume, and read back with GET after a reboot.
import test from 'ava';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { importApp, inside, processes, uidOf } from './_oci-app.ts';
import { REDIS } from './_oci-images.ts';

test('redis from its Debian-built OCI image runs unedited as the image user redis; redis-cli sets a key that SAVE keeps in its volume across a reboot', async (t) => {
  t.timeout(30 * 60_000);
  const app = await importApp(t, REDIS, 'redis', '7.0.15');
  t.deepEqual(app.imported.unmapped, []);
  t.like(app.imported.manifest.services[0], {
    name: 'redis',
    execStart: ['redis-server', '--protected-mode', 'no'],
    user: 'redis',
    group: 'redis',
    workingDirectory: '/data',
    writableRoot: 'ephemeral',
    readiness: { type: 'tcp', port: 6379, host: '127.0.0.1' },
    volumes: ['/data'],
    capabilityBoundingSet: [],
  });
  const cli = async (pid: number, ...args: string[]) => {
    const r = await inside(pid, ['-m', '-n'], ['redis-cli', '-h', '127.0.0.1', '-p', '6379', ...args]);
    t.is(r.exitCode, 0, r.stderr);
    return r.stdout.trim();
  };
  const a = await app.boot();
  const [server] = await processes(a, 'redis-server');
  t.truthy(server, a.output());
  const pid = server as number;
  t.is(await cli(pid, 'PING'), 'PONG');
  t.is(await cli(pid, 'SET', 'mway:kept', 'across boots'), 'OK');
  t.is(await cli(pid, 'CONFIG', 'GET', 'dir'), 'dir\n/data');
  t.is(await cli(pid, 'SAVE'), 'OK');
  // The dump is in the volume on the data partition, owned by the uid redis runs as there:
  // the layer's own, not root.
  const volume = join(app.root.root, 'data', 'secure', 'redis', 'volumes', 'redis', 'data');
  t.true((await readdir(volume)).includes('dump.rdb'));
  const uid = (await uidOf(pid)) ?? 0;
  t.not(uid, 0);
  t.is((await stat(join(volume, 'dump.rdb'))).uid, uid);
  await a.kill('SIGTERM');
  t.is(await a.exit, 0);

  const b = await app.boot();
  const [again] = await processes(b, 'redis-server');
  t.truthy(again, b.output());
  t.is(await cli(again as number, 'GET', 'mway:kept'), 'across boots');
  t.is(await cli(again as number, 'DBSIZE'), '1');
  await b.kill('SIGTERM');
  t.is(await b.exit, 0);
});
