// A real database from its container image on MilkyWayLinux in QEMU (SLOW: TCG, one build and
// two boots of several minutes each on 2 cores): postgresql-15's image built from Debian's
// packages (test/_debian-image.ts, cached) is imported unedited with `mway-layer import-oci`,
// signed with the built image's user key and put into the disk's layers partition (debugfs);
// the guest's agent verifies and activates it through kernel dm-verity and runs the image's
// entrypoint, which initialises its data volume on first start. psql from the host, through a
// 127.0.0.1 forward, creates a table; after a power-off and a second boot of the same disk the
// row is still there. SELinux enforcing (the image spec's default): the volume seeded into the
// layer's private data the way the policy allows the agent, the volume's mount point made in
// the run's writable overlay, System V shared memory in the layer's own domain.
import test from 'ava';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../common/exec.ts';
import { readGpt } from '../../formats/index.ts';
import { buildImage } from '../../imagebuild/build-image.ts';
import { extractPartition, part } from '../../imagebuild/disk-read.ts';
import { validateImageSpec } from '../../imagebuild/image-spec.ts';
import { runQemu } from '../../imagebuild/qemu-run.ts';
import { debianImage } from '../_debian-image.ts';
import { PASSWORD, POSTGRES } from '../agent/layers/_oci-images.ts';
import { BINS, freePort, ROOT, tempDir } from '../helpers.ts';

const BOOT_MS = 15 * 60_000;

async function psql(port: number, sql: string, password = PASSWORD) {
  return run(
    'psql',
    ['-X', '-A', '-t', `host=127.0.0.1 port=${port} user=postgres dbname=postgres`, '-c', sql],
    { timeout: 60_000, reject: false, env: { PGPASSWORD: password, PGCONNECT_TIMEOUT: '10' } },
  );
}

test('QEMU: postgresql from its Debian-built OCI image runs unedited on the booted disk; psql through a forward; a table kept across a power-off', async (t) => {
  t.timeout(2 * BOOT_MS + 20 * 60_000);
  const archive = await debianImage(POSTGRES);
  const dir = await tempDir(t);
  const spec = validateImageSpec(
    {
      name: 'pg',
      version: '1.0.0',
      coreos: { network: { interface: 'eth0', address: '10.0.2.15/24', gateway: '10.0.2.2' } },
      layers: [join(ROOT, 'examples/default/layers/web')],
      keys: 'generate',
      secureConfig: { hostname: 'pg', allowLayers: ['web', 'pg'] },
      partitions: { esp: 64, layers: 640, data: 256 },
    },
    { base: dir },
  );
  const r = await buildImage({ spec, outDir: join(dir, 'out'), sourceDateEpoch: 1_700_000_000 });
  // Imported as a user would, signed with the key the image trusts for user layers.
  const keys = join(dir, 'out', 'keys');
  const mwl = join(dir, 'pg.mwl');
  await run(
    process.execPath,
    [
      BINS['mway-layer'],
      'import-oci',
      `oci-archive:${archive}:latest`,
      '--name',
      'pg',
      '--version',
      '15.0.0',
      '--key',
      join(keys, 'user.key'),
      '--cert',
      join(keys, 'user.crt'),
      '-o',
      mwl,
    ],
    { timeout: 900_000 },
  );
  const lp = (await readGpt(r.disk)).partitions.find((p) => p.name === 'layers');
  if (lp === undefined) throw new Error('no layers partition');
  const img = await extractPartition(r.disk, lp, join(dir, 'layers.img'));
  await run('debugfs', ['-w', '-R', `write ${mwl} pg.mwl`, img], { timeout: 120_000 });
  await run(
    'dd',
    [`if=${img}`, `of=${r.disk}`, 'bs=1M', `seek=${part.offset(lp)}`, 'oflag=seek_bytes', 'conv=notrunc'],
    { timeout: 300_000 },
  );
  await rm(img);

  const port = await freePort();
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
      forwards: [{ host: port, guest: 5432 }],
      onLine: (l) => {
        lines.push(l);
        if (/milkyway-agent info: boot done:/.test(l)) booted?.(l);
      },
    });
    t.teardown(() => q.kill());
    const line = await Promise.race([done, q.done.then(() => 'QEMU ended')]);
    t.regex(line, /2 services \(0 failed\), 0 layers refused/, lines.slice(-40).join('\n'));
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

  const first = await boot();
  await ready(first.lines);
  const created = await psql(
    port,
    'CREATE TABLE kept (v text); INSERT INTO kept VALUES ($$from the first boot$$)',
  );
  t.is(created.exitCode, 0, created.stderr);
  t.regex((await psql(port, 'SELECT 1', 'wrong')).stderr, /password authentication failed/);
  await first.q.powerdown();
  t.true((await first.q.done).poweredOff);

  const second = await boot();
  await ready(second.lines);
  const kept = await psql(port, 'SELECT v FROM kept');
  t.is(kept.exitCode, 0, kept.stderr);
  t.is(kept.stdout.trim(), 'from the first boot');
  await second.q.powerdown();
  t.true((await second.q.done).poweredOff);
});
