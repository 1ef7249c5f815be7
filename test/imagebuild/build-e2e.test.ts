// End-to-end QEMU tests of the whole system (SLOW: TCG only, ~2–4 min per boot on 2 cores):
// the default disk boots through OVMF → UKI → initramfs → dm-verity CoreOS → the agent as
// PID 1, which verifies and starts the example layer; the test reaches its HTTP service
// through a forward and powers the guest off with the ACPI button. A flipped CoreOS byte
// stops the boot in the initramfs; a flipped layer payload byte gets that layer refused
// while the system comes up. Serial, so the boots do not share the two cores.
import test from 'ava';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../common/exec.ts';
import { type BuildResult, buildImage } from '../../imagebuild/build-image.ts';
import { extractPartition, part } from '../../imagebuild/disk-read.ts';
import { DPS, readGpt } from '../../formats/index.ts';
import { DEFAULT_SPEC, loadImageSpec } from '../../imagebuild/image-spec.ts';
import { INIT_MARKERS } from '../../imagebuild/initramfs-init.ts';
import { type QemuRun, runQemu } from '../../imagebuild/qemu-run.ts';
import { readLayer } from '../../layers/layer-file.ts';
import { freePort, tempDir } from '../helpers.ts';

const BOOT_MS = 9 * 60_000;
const dirs: string[] = [];
test.after.always(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

let built: Promise<BuildResult> | undefined;
function disk(): Promise<BuildResult> {
  built ??= (async () => {
    const out = await mkdtemp(join(tmpdir(), 'mway-e2e-'));
    dirs.push(out);
    return buildImage({
      spec: await loadImageSpec(DEFAULT_SPEC),
      outDir: out,
      sourceDateEpoch: 1_700_000_000,
    });
  })();
  return built;
}

async function flipByte(path: string, offset: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, offset);
    b[0] = (b[0] as number) ^ 0x01;
    await fh.write(b, 0, 1, offset);
  } finally {
    await fh.close();
  }
}

/** Boots `path`; resolves `until(line)`'s first match (or undefined when QEMU ends first). */
function boot(
  t: { teardown(fn: () => void): void },
  path: string,
  forwards: { host: number; guest: number }[] = [],
) {
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (l: string | undefined) => void }[] = [];
  let q: QemuRun | undefined;
  const started = runQemu({
    disk: path,
    timeout: BOOT_MS,
    forwards,
    serial: 'none',
    snapshot: true,
    onLine: (l) => {
      lines.push(l);
      for (const w of waiters.splice(0)) {
        if (w.re.test(l)) w.resolve(l);
        else waiters.push(w);
      }
    },
  }).then((r) => {
    q = r;
    t.teardown(() => r.kill());
    void r.done.then(() => {
      for (const w of waiters.splice(0)) w.resolve(undefined);
    });
    return r;
  });
  return {
    lines,
    started,
    until(re: RegExp): Promise<string | undefined> {
      const hit = lines.find((l) => re.test(l));
      if (hit !== undefined) return Promise.resolve(hit);
      return new Promise((resolve) => waiters.push({ re, resolve }));
    },
    get qemu() {
      return q;
    },
  };
}

test.serial(
  'QEMU: the default disk boots to the agent as PID 1, serves the layer over HTTP, powers off',
  async (t) => {
    t.timeout(BOOT_MS + 120_000);
    const r = await disk();
    const port = await freePort();
    const b = boot(t, r.disk, [{ host: port, guest: 8080 }]);
    const q = await b.started;
    const pid1 = await b.until(/milkyway-agent info: starting \(pid1 mode, root \/, pid 1\)/);
    t.truthy(pid1, b.lines.slice(-20).join('\n'));
    const done = await b.until(/milkyway-agent info: boot done:/);
    t.regex(done ?? '', /1 services \(0 failed\), 0 layers refused/);
    let body = '';
    for (let i = 0; i < 30 && body === ''; i++) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(10_000) });
        if (res.status === 200) body = await res.text();
      } catch {
        await new Promise((s) => setTimeout(s, 2000));
      }
    }
    t.regex(body, /Hello from a signed MilkyWay layer/);
    // The local API: the agent started the system bus and owns its name on it.
    const dbus = await Promise.race([
      b.until(/D-Bus: serving org\.milkyway\.Agent1 on /),
      new Promise<undefined>((s) => setTimeout(() => s(undefined), 60_000)),
    ]);
    t.truthy(dbus, b.lines.filter((l) => /D-Bus|dbus/.test(l)).join('\n'));
    await q.powerdown();
    const end = await q.done;
    t.true(end.poweredOff, end.tail.join('\n'));
    t.is(end.exitCode, 0);
    t.true(b.lines.some((l) => l.includes('shutdown done (poweroff)')));
  },
);

test.serial(
  'QEMU: one flipped byte in CoreOS A stops the boot in the initramfs with the verity error',
  async (t) => {
    t.timeout(BOOT_MS + 60_000);
    const r = await disk();
    const dir = await tempDir(t);
    const path = join(dir, 'disk.img');
    await run('cp', ['--sparse=always', r.disk, path], { timeout: 120_000 });
    const a = (await readGpt(path)).partitions.find((p) => p.type === DPS.root && p.name !== '_empty');
    if (a === undefined) return t.fail('no CoreOS A');
    await flipByte(path, part.offset(a) + 2000 * 4096 + 123);
    const b = boot(t, path);
    const q = await b.started;
    const end = await q.done;
    t.true(
      b.lines.some((l) => l.includes(INIT_MARKERS.verityFailed)),
      b.lines.slice(-15).join('\n'),
    );
    t.false(b.lines.some((l) => l.includes(INIT_MARKERS.switching)));
    t.false(b.lines.some((l) => l.includes('milkyway-agent')));
    t.true(end.poweredOff);
  },
);

test.serial(
  'QEMU: a flipped byte in a layer payload gets that layer refused; the system comes up and says so',
  async (t) => {
    t.timeout(BOOT_MS + 120_000);
    const r = await disk();
    const dir = await tempDir(t);
    const path = join(dir, 'disk.img');
    await run('cp', ['--sparse=always', r.disk, path], { timeout: 120_000 });
    const lp = (await readGpt(path)).partitions.find((p) => p.name === 'layers');
    if (lp === undefined) return t.fail('no layers partition');
    const img = await extractPartition(path, lp, join(dir, 'layers.img'));
    await run('debugfs', ['-R', `dump /web.mwl ${join(dir, 'web.mwl')}`, img], { timeout: 60_000 });
    const target = (await readLayer(join(dir, 'web.mwl'))).payloadOffset + 4096 + 9;
    const bmap = await run('debugfs', ['-R', `bmap /web.mwl ${Math.floor(target / 4096)}`, img], {
      timeout: 60_000,
    });
    const physical = Number(bmap.stdout.trim().split('\n').pop());
    await flipByte(path, part.offset(lp) + physical * 4096 + (target % 4096));
    const b = boot(t, path);
    const q = await b.started;
    const done = await b.until(/milkyway-agent info: boot done:/);
    t.regex(done ?? '', /1 layers refused/, b.lines.slice(-20).join('\n'));
    t.true(b.lines.some((l) => /milkyway-agent (warn|error).*web/.test(l)));
    await q.powerdown();
    const end = await q.done;
    t.true(end.poweredOff);
  },
);
