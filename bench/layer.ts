// `npm run bench -- layer [--rounds N]`: pack a 256 MiB tree into a signed layer and compare
// with `mkfs.erofs` + `veritysetup format` run alone on the same tree in the same run (target:
// at most 1.05× median, issue 11); then the full verify throughput (signatures + whole tree +
// every payload block, in place).
// Wall time is what the target is about; CPU time (this process's threads plus its reaped
// children, from /proc/self/stat) is printed too because on a loaded 2-core machine it shows
// how much work each side does, which the wall time then hides.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { run as runTool } from '../common/exec.ts';
import { newIdentity, readCertificates, readPrivateKey } from '../keys/index.ts';
import { packLayer, verifyLayer } from '../layers/index.ts';
import { intFlag } from './_flags.ts';
import { median } from './_measure.ts';

const EPOCH = 1_700_000_000;
/** USER_HZ; Linux reports times in /proc in these ticks (100 on every Debian kernel). */
const TICK_MS = 10;

/** CPU ms of this process (all threads) plus the children it has waited for. */
function cpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'latin1');
  // Fields after the command name (which may hold spaces), counted from field 3.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const at = (n: number) => Number(f[n - 3]);
  return (at(14) + at(15) + at(16) + at(17)) * TICK_MS;
}

interface Sample {
  wall: number;
  cpu: number;
  steps: string;
}

async function measure(fn: () => Promise<string>): Promise<Sample> {
  const c = cpuMs();
  const t = performance.now();
  const steps = await fn();
  return { wall: performance.now() - t, cpu: cpuMs() - c, steps };
}

const ms = (n: number) => `${n.toFixed(0)} ms`;

export async function run(argv: string[]): Promise<void> {
  const rounds = intFlag(argv, 'rounds', 5);
  const dir = await mkdtemp(join(tmpdir(), 'mway-bench-layer-'));
  try {
    const src = join(dir, 'src');
    const rootfs = join(src, 'rootfs');
    // 256 MiB: 64 directories × 8 files of 512 KiB random data, plus 1,024 small files.
    const bytes = 256 * 2 ** 20;
    for (let d = 0; d < 64; d++) {
      await mkdir(join(rootfs, `d${d}`), { recursive: true });
      for (let f = 0; f < 8; f++)
        await writeFile(join(rootfs, `d${d}`, `f${f}.bin`), randomBytes(512 * 1024));
    }
    await mkdir(join(rootfs, 'etc'));
    for (let i = 0; i < 1024; i++) await writeFile(join(rootfs, 'etc', `c${i}.conf`), `key${i}=value\n`);
    await writeFile(
      join(src, 'layer.json'),
      JSON.stringify({
        name: 'bench',
        version: '1.0.0',
        kind: 'app',
        services: [{ name: 'b', execStart: ['/b'] }],
      }),
    );
    const root = await newIdentity({ role: 'vendor-root', name: 'vroot', outDir: dir });
    const vendor = await newIdentity({
      role: 'vendor',
      name: 'vendor',
      outDir: dir,
      issuerKey: await readPrivateKey(root.keyPath),
      issuerCert: root.certificate,
    });
    const key = await readPrivateKey(vendor.keyPath);
    const chain = await readCertificates(vendor.certPath);
    const out = join(dir, 'bench.mwl');
    const img = join(dir, 'ref.erofs');
    const hashArea = join(dir, 'ref.verity');

    const ours = async (): Promise<string> => {
      // Per-step times through the progress hook packLayer already calls.
      const steps: [string, number][] = [];
      const progress = {
        step: (name: string) => steps.push([name, performance.now()]),
        bytes: () => {},
        done: () => steps.push(['end', performance.now()]),
      };
      await packLayer({ dir: src, key, chain, out, sourceDateEpoch: EPOCH, progress });
      return steps
        .slice(0, -1)
        .map(([n, at], j) => `${n} ${ms((steps[j + 1]?.[1] ?? at) - at)}`)
        .join(', ');
    };
    const reference = async (): Promise<string> => {
      const t = performance.now();
      await runTool('mkfs.erofs', [`-T${EPOCH}`, '--ignore-mtime', '--all-root', '--quiet', img, rootfs], {
        timeout: 600_000,
      });
      const mkfs = performance.now() - t;
      await runTool('veritysetup', ['format', img, hashArea], { timeout: 600_000 });
      return `mkfs.erofs ${ms(mkfs)}, veritysetup format ${ms(performance.now() - t - mkfs)}`;
    };

    const o: Sample[] = [];
    const r: Sample[] = [];
    const v: number[] = [];
    let payloadSize = 0;
    for (let i = 0; i < rounds; i++) {
      // Alternate who goes first, so neither side always meets the other's dirty pages.
      if (i % 2 === 0) o.push(await measure(ours));
      r.push(await measure(reference));
      if (i % 2 === 1) o.push(await measure(ours));
      const t = performance.now();
      const verified = await verifyLayer(out, { anchors: [root.certificate] });
      v.push(performance.now() - t);
      payloadSize = verified.payloadSize;
      await rm(out);
      await rm(img);
      await rm(hashArea);
    }
    const best = (xs: Sample[]) => xs.reduce((a, b) => (b.wall < a.wall ? b : a));
    const bo = best(o);
    const br = best(r);
    const bv = Math.min(...v);
    const mbs = (n: number, t: number) => (n / 1e6 / (t / 1000)).toFixed(0);
    console.log(
      `tree: ${bytes / 2 ** 20} MiB in ${64 * 8 + 1024} files, page cache warm, ${rounds} rounds, load average at start ${loadavg()[0]?.toFixed(1)}`,
    );
    console.log(
      `ours  (mway-layer pack: check tree, erofs, verity on every core, sign, .mwl in place): best ${ms(bo.wall)}, median ${ms(median(o.map((s) => s.wall)))}, CPU ${ms(bo.cpu)}`,
    );
    console.log(`        steps: ${bo.steps}`);
    console.log(
      `ref   (mkfs.erofs + veritysetup format alone):                                             best ${ms(br.wall)}, median ${ms(median(r.map((s) => s.wall)))}, CPU ${ms(br.cpu)}`,
    );
    console.log(`        steps: ${br.steps}`);
    console.log(
      `ratio: ${(bo.wall / br.wall).toFixed(2)}x best, ${(median(o.map((s) => s.wall)) / median(r.map((s) => s.wall))).toFixed(2)}x median (target ≤ 1.05x median); CPU ${(bo.cpu / br.cpu).toFixed(2)}x`,
    );
    // Round by round (each pair ran back to back), which drift in the machine's load moves less.
    const paired = o.map((s, i) => s.wall / (r[i]?.wall ?? Number.NaN));
    console.log(
      `paired ratio per round: median ${median(paired).toFixed(2)}x (${paired.map((x) => x.toFixed(2)).join(' ')})`,
    );
    console.log(`pack throughput: ${mbs(bytes, bo.wall)} MB/s of tree`);
    console.log(
      `verify (signature + whole hash tree + every payload block): ${mbs(payloadSize, bv)} MB/s (${ms(bv)} for ${(payloadSize / 2 ** 20).toFixed(0)} MiB)`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
