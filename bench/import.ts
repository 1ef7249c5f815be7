// `npm run bench -- import [--rounds N]`: `importOci` of a real ~170 MB image (postgresql-15
// from Debian's packages, test/_debian-image.ts; cached) against what a user would run by hand
// for the same result, in the same run: `skopeo copy` of the same reference into an OCI layout,
// `umoci unpack`, `mkfs.erofs` and `veritysetup format` (target: ≤ 1.2× median, issue 15).
// Both start from the same `oci-archive:` reference, so both pay skopeo; ours also reads the
// image's passwd for its User, maps the config, signs and writes the .mwl. Wall time is the
// target; CPU (this process plus its reaped children) is printed beside it because on a loaded
// 2-core machine it shows the work each side does.
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { run as runTool } from '../common/exec.ts';
import { newIdentity, readCertificates, readPrivateKey } from '../keys/index.ts';
import { importOci } from '../layers/index.ts';
import { POSTGRES } from '../test/agent/layers/_oci-images.ts';
import { debianImage } from '../test/_debian-image.ts';
import { intFlag } from './_flags.ts';
import { median, reapedChildrenCpu } from './_measure.ts';

const EPOCH = 1_700_000_000;

interface Sample {
  wall: number;
  cpu: number;
  steps: string;
}

async function cpuNow(): Promise<number> {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000 + (await reapedChildrenCpu()) * 1000;
}

async function measure(fn: () => Promise<string>): Promise<Sample> {
  const c = await cpuNow();
  const t = performance.now();
  const steps = await fn();
  return { wall: performance.now() - t, cpu: (await cpuNow()) - c, steps };
}

const ms = (n: number) => `${n.toFixed(0)} ms`;

/** Each step's time from the names and instants a progress hook saw. */
function stepTimes(steps: [string, number][]): string {
  return steps
    .slice(0, -1)
    .map(([n, at], j) => `${n.replace(/ \(.*\)$/, '')} ${ms((steps[j + 1]?.[1] ?? at) - at)}`)
    .join(', ');
}

export async function run(argv: string[]): Promise<void> {
  const rounds = intFlag(argv, 'rounds', 3);
  const tar = await debianImage(POSTGRES);
  const source = `oci-archive:${tar}:latest`;
  const dir = await mkdtemp(join(tmpdir(), 'mway-bench-import-'));
  try {
    const root = await newIdentity({ role: 'user-root', name: 'root', outDir: dir });
    const user = await newIdentity({
      role: 'user',
      name: 'user',
      outDir: dir,
      issuerKey: await readPrivateKey(root.keyPath),
      issuerCert: root.certificate,
    });
    const key = await readPrivateKey(user.keyPath);
    const chain = await readCertificates(user.certPath);
    const out = join(dir, 'pg.mwl');
    const layout = join(dir, 'layout');
    const bundle = join(dir, 'bundle');
    const img = join(dir, 'ref.erofs');
    const hashArea = join(dir, 'ref.verity');
    let payload = 0;

    const ours = async (): Promise<string> => {
      const steps: [string, number][] = [];
      const progress = {
        step: (name: string) => steps.push([name, performance.now()]),
        bytes: () => {},
        done: () => {},
      };
      const r = await importOci({
        archive: source,
        key,
        chain,
        out,
        name: 'pg',
        version: '15.0.0',
        sourceDateEpoch: EPOCH,
        progress,
      });
      steps.push(['end', performance.now()]);
      payload = r.manifest.payload.size;
      return stepTimes(steps);
    };
    const reference = async (): Promise<string> => {
      const steps: [string, number][] = [];
      const step = async (name: string, tool: string, args: string[]) => {
        steps.push([name, performance.now()]);
        await runTool(tool, args, { timeout: 1_800_000 });
      };
      await step('skopeo copy', 'skopeo', ['copy', '--quiet', source, `oci:${layout}:latest`]);
      await step('umoci unpack', 'umoci', ['unpack', '--image', `${layout}:latest`, bundle]);
      await step('mkfs.erofs', 'mkfs.erofs', [
        `-T${EPOCH}`,
        '--ignore-mtime',
        '--quiet',
        img,
        join(bundle, 'rootfs'),
      ]);
      await step('veritysetup format', 'veritysetup', ['format', img, hashArea]);
      steps.push(['end', performance.now()]);
      return stepTimes(steps);
    };
    const clean = async () => {
      for (const p of [out, layout, bundle, img, hashArea]) await rm(p, { recursive: true, force: true });
    };

    const load = () =>
      loadavg()
        .map((x) => x.toFixed(1))
        .join(' ');
    const loadBefore = load();
    const o: Sample[] = [];
    const r: Sample[] = [];
    for (let i = 0; i < rounds; i++) {
      // Alternate who goes first, so neither side always meets the other's dirty pages.
      if (i % 2 === 0) o.push(await measure(ours));
      await clean();
      r.push(await measure(reference));
      await clean();
      if (i % 2 === 1) {
        o.push(await measure(ours));
        await clean();
      }
    }
    const medianOf = (xs: Sample[]) => median(xs.map((s) => s.wall));
    const mid = (xs: Sample[]) => xs.find((s) => s.wall === medianOf(xs)) as Sample;
    const mo = mid(o);
    const mr = mid(r);
    console.log(
      `image: ${tar.split('/').pop()} (${source.startsWith('oci-archive:') ? 'oci-archive' : ''}), payload ${(payload / 1e6).toFixed(0)} MB erofs, ${rounds} rounds in turns, load average ${loadBefore} before, ${load()} after`,
    );
    console.log(
      `ours (importOci: skopeo to a layout, apply layers, passwd, config, erofs, verity, sign, .mwl): median ${ms(mo.wall)}, CPU ${ms(mo.cpu)}`,
    );
    console.log(`       steps: ${mo.steps}`);
    console.log(
      `ref  (skopeo copy + umoci unpack + mkfs.erofs + veritysetup format): median ${ms(mr.wall)}, CPU ${ms(mr.cpu)}`,
    );
    console.log(`       steps: ${mr.steps}`);
    const paired = o.map((s, i) => s.wall / (r[i]?.wall ?? Number.NaN));
    console.log(
      `ratio: ${(mo.wall / mr.wall).toFixed(2)}x median (target ≤ 1.2x), CPU ${(mo.cpu / mr.cpu).toFixed(2)}x; per round ${paired.map((x) => x.toFixed(2)).join(' ')}`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
