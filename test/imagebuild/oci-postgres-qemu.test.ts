// Real servers from their container images on MilkyWayLinux in QEMU (SLOW: TCG, one build and
// two boots of several minutes each on 2 cores): postgresql-15's and redis's images built from
// Debian's packages (test/_debian-image.ts, cached) are imported unedited with `mway-layer import-oci`,
// signed with the built image's user key and put into the disk's layers partition (debugfs);
// the guest's agent verifies and activates it through kernel dm-verity and runs the image's
// entrypoint, which initialises its data volume on first start. psql from the host, through a
// 127.0.0.1 forward, creates a table; after a power-off and a second boot of the same disk the
// row is still there; the same for a key redis wrote to its volume, read with the image's own
// redis-cli (taken from the layer's payload) through a second forward; redis comes as a compose
// project (import-compose) whose healthcheck is its readiness, an exec probe into its sandbox. nginx-light's image
// (the same recipe, imported with --writable-root persistent) serves port 80 to curl through a
// third forward in both boots, writing its logs, temp folders and pid file outside its Volume,
// in its writable root kept on the data partition: after each power-off debugfs reads its
// access log there (the first boot's requests, then both boots') and the log's label, the
// layer's root type and pair. SELinux enforcing
// (the image spec's default): the volume seeded into the layer's private data the way the
// policy allows the agent, the writable root mounted with context= of the layer's root type and
// pair (doc/selinux.md, "Writable roots": what overlayfs copies up is that type, never the
// payload's read-only one), the volume's mount point made there, System V shared memory in the
// layer's own domain; no AVC denial on the console in either boot but postgres's huge pages probe.
import test from 'ava';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { run } from '../../common/exec.ts';
import { readGpt } from '../../formats/index.ts';
import { buildImage } from '../../imagebuild/build-image.ts';
import { extractPartition, part } from '../../imagebuild/disk-read.ts';
import { validateImageSpec } from '../../imagebuild/image-spec.ts';
import { runQemu } from '../../imagebuild/qemu-run.ts';
import { debianImage } from '../_debian-image.ts';
import { NGINX, PASSWORD, POSTGRES, REDIS } from '../agent/layers/_oci-images.ts';
import { extractFiles } from '../../layers/index.ts';
import { BINS, freePort, ROOT, tempDir } from '../helpers.ts';

const BOOT_MS = 15 * 60_000;

async function psql(port: number, sql: string, password = PASSWORD) {
  return run(
    'psql',
    ['-X', '-A', '-t', `host=127.0.0.1 port=${port} user=postgres dbname=postgres`, '-c', sql],
    { timeout: 60_000, reject: false, env: { PGPASSWORD: password, PGCONNECT_TIMEOUT: '10' } },
  );
}

async function curl(port: number, path: string) {
  return run('curl', ['-s', '-m', '20', '-w', '\n%{http_code}', `http://127.0.0.1:${port}${path}`], {
    timeout: 60_000,
    reject: false,
  });
}

test('QEMU: postgresql, redis and nginx from their Debian-built OCI images run unedited on the booted disk under SELinux enforcing; psql, redis-cli and curl through forwards; a table and a key kept across a power-off', async (t) => {
  t.timeout(2 * BOOT_MS + 20 * 60_000);
  const archive = await debianImage(POSTGRES);
  const redisArchive = await debianImage(REDIS);
  const nginxArchive = await debianImage(NGINX);
  const dir = await tempDir(t);
  const spec = validateImageSpec(
    {
      name: 'pg',
      version: '1.0.0',
      coreos: { network: { interface: 'eth0', address: '10.0.2.15/24', gateway: '10.0.2.2' } },
      layers: [join(ROOT, 'examples/default/layers/web')],
      keys: 'generate',
      secureConfig: { hostname: 'pg', allowLayers: ['web', 'pg', 'kv-cache', 'www'] },
      partitions: { esp: 64, layers: 900, data: 256 },
    },
    { base: dir },
  );
  const r = await buildImage({ spec, outDir: join(dir, 'out'), sourceDateEpoch: 1_700_000_000 });
  // Imported as a user would, signed with the key the image trusts for user layers.
  const keys = join(dir, 'out', 'keys');
  const importLayer = async (source: string, name: string, version: string, ...more: string[]) => {
    const out = join(dir, `${name}.mwl`);
    await run(
      process.execPath,
      [
        BINS['mway-layer'],
        'import-oci',
        `oci-archive:${source}:latest`,
        '--name',
        name,
        '--version',
        version,
        '--key',
        join(keys, 'user.key'),
        '--cert',
        join(keys, 'user.crt'),
        '-o',
        out,
        ...more,
      ],
      { timeout: 900_000 },
    );
    return out;
  };
  // redis as a compose project's one service, its healthcheck (the image's redis-cli ping) its
  // readiness: an exec probe into its sandbox, which under enforcing follows the service's own
  // context, so nothing from its writable root runs in the agent's domain (exec-probe.ts).
  const importProject = async (image: string) => {
    const file = join(dir, 'compose.yaml');
    await writeFile(
      file,
      [
        'name: kv',
        'services:',
        '  cache:',
        `    image: oci-archive:${image}:latest`,
        '    volumes: ["data:/data"]',
        '    healthcheck:',
        '      test: ["CMD", "redis-cli", "ping"]',
        '      interval: 2s',
        'volumes:',
        '  data:',
        '',
      ].join('\n'),
    );
    const out = join(dir, 'kv');
    await mkdir(out);
    await run(
      process.execPath,
      [
        BINS['mway-layer'],
        'import-compose',
        file,
        '--key',
        join(keys, 'user.key'),
        '--cert',
        join(keys, 'user.crt'),
        '-o',
        out,
      ],
      { timeout: 900_000 },
    );
    return join(out, 'kv-cache.mwl');
  };
  const mwls = [
    await importLayer(archive, 'pg', '15.0.0'),
    await importProject(redisArchive),
    await importLayer(nginxArchive, 'www', '1.22.1', '--writable-root', 'persistent'),
  ];
  // The image's own redis-cli, from the layer's payload, run on the host with the image's libraries.
  const kvFiles = join(dir, 'kv-files');
  await extractFiles(mwls[1] as string, kvFiles);
  const redisCli = async (port: number, ...args: string[]) =>
    run(join(kvFiles, 'usr/bin/redis-cli'), ['-h', '127.0.0.1', '-p', String(port), ...args], {
      timeout: 30_000,
      reject: false,
      env: { LD_LIBRARY_PATH: `${kvFiles}/usr/lib/x86_64-linux-gnu:${kvFiles}/lib/x86_64-linux-gnu` },
    });
  const lp = (await readGpt(r.disk)).partitions.find((p) => p.name === 'layers');
  if (lp === undefined) throw new Error('no layers partition');
  const img = await extractPartition(r.disk, lp, join(dir, 'layers.img'));
  for (const mwl of mwls)
    await run('debugfs', ['-w', '-R', `write ${mwl} ${basename(mwl)}`, img], { timeout: 120_000 });
  await run(
    'dd',
    [`if=${img}`, `of=${r.disk}`, 'bs=1M', `seek=${part.offset(lp)}`, 'oflag=seek_bytes', 'conv=notrunc'],
    { timeout: 300_000 },
  );
  await rm(img);

  const port = await freePort();
  const kvPort = await freePort();
  const wwwPort = await freePort();
  const boot = async () => {
    const lines: string[] = [];
    let booted: ((l: string) => void) | undefined;
    const done = new Promise<string>((res) => {
      booted = res;
    });
    const q = await runQemu({
      disk: r.disk,
      timeout: BOOT_MS,
      serial: process.env.MWAY_QEMU_CONSOLE ?? 'none',
      memoryMiB: 1536,
      forwards: [
        { host: port, guest: 5432 },
        { host: kvPort, guest: 6379 },
        { host: wwwPort, guest: 80 },
      ],
      onLine: (l) => {
        lines.push(l);
        if (/milkyway-agent info: boot done:/.test(l)) booted?.(l);
      },
    });
    t.teardown(() => q.kill());
    const line = await Promise.race([done, q.done.then(() => 'QEMU ended')]);
    t.regex(line, /4 services \(0 failed\), 0 layers refused/, lines.slice(-40).join('\n'));
    return { q, lines };
  };
  // postgres accepts connections some time after its service started (initdb on first boot).
  const ready = async (lines: string[]) => {
    for (let i = 0; i < 120; i++) {
      const r = await psql(port, 'SELECT 1');
      if (r.exitCode === 0 && r.stdout.trim() === '1') return;
      await new Promise((s) => setTimeout(s, 5000));
    }
    t.fail(`postgres never answered:\n${lines.slice(-40).join('\n')}`);
  };

  // nginx under enforcing: its page, and its 404 for a missing one (both written to its access
  // log in the writable root; nginx exits at start when it cannot open that log or make its
  // temp folders under /var/lib/nginx).
  const served = async (lines: string[]) => {
    const page = await curl(wwwPort, '/');
    t.regex(page.stdout, /<title>Welcome to nginx!<\/title>[\s\S]*\n200$/, lines.slice(-40).join('\n'));
    t.regex((await curl(wwwPort, '/missing')).stdout, /\n404$/);
  };
  // Every denial but postgres's: it probes huge pages (an anonymous hugetlbfs file it may not
  // write) and then does without.
  const denials = (lines: readonly string[]) =>
    lines.filter((l) => /avc: +denied/.test(l) && !/comm="postgres" .*dev="hugetlbfs"/.test(l));

  // nginx's kept root, read from the powered-off disk's data partition by debugfs: its access
  // log (one line per request) and that file's SELinux label.
  const dp = (await readGpt(r.disk)).partitions.find((p) => p.name === 'data');
  if (dp === undefined) throw new Error('no data partition');
  const ACCESS_LOG = 'roots/www/www/upper/var/log/nginx/access.log';
  const keptRoot = async () => {
    const data = await extractPartition(r.disk, dp, join(dir, 'data.img'));
    const cat = await run('debugfs', ['-R', `cat ${ACCESS_LOG}`, data], { timeout: 60_000 });
    const label = await run('debugfs', ['-R', `ea_get ${ACCESS_LOG} security.selinux`, data], {
      timeout: 60_000,
    });
    await rm(data);
    return { log: cat.stdout.split('\n').filter((l) => l !== ''), label: label.stdout };
  };
  const requests = (log: string[]) =>
    log.map((l) => /"GET (\S+) HTTP\/1\.1" (\d+)/.exec(l)?.slice(1).join(' '));

  const first = await boot();
  await ready(first.lines);
  await served(first.lines);
  const created = await psql(
    port,
    'CREATE TABLE kept (v text); INSERT INTO kept VALUES ($$from the first boot$$)',
  );
  t.is(created.exitCode, 0, created.stderr);
  t.regex((await psql(port, 'SELECT 1', 'wrong')).stderr, /password authentication failed/);
  const set = await redisCli(kvPort, 'SET', 'kv:kept', 'from the first boot');
  t.is(set.stdout.trim(), 'OK', set.stderr);
  t.is((await redisCli(kvPort, 'SAVE')).stdout.trim(), 'OK');
  await first.q.powerdown();
  t.true((await first.q.done).poweredOff);
  t.deepEqual(denials(first.lines), []);
  const afterFirst = await keptRoot();
  t.deepEqual(requests(afterFirst.log), ['/ 200', '/missing 404'], afterFirst.log.join('\n'));
  t.regex(afterFirst.label, /system_u:object_r:mway_www_root_t:s0:c\d+,c\d+/);

  const second = await boot();
  await ready(second.lines);
  const kept = await psql(port, 'SELECT v FROM kept');
  t.is(kept.exitCode, 0, kept.stderr);
  t.is(kept.stdout.trim(), 'from the first boot');
  t.is((await redisCli(kvPort, 'GET', 'kv:kept')).stdout.trim(), 'from the first boot');
  await served(second.lines);
  await second.q.powerdown();
  t.true((await second.q.done).poweredOff);
  t.deepEqual(denials(second.lines), []);
  // Kept across the power-off: the second boot's nginx appended to the first one's log.
  const afterSecond = await keptRoot();
  t.deepEqual(
    requests(afterSecond.log),
    ['/ 200', '/missing 404', '/ 200', '/missing 404'],
    afterSecond.log.join('\n'),
  );
});
