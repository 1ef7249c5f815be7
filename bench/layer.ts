// `npm run bench -- layer`: pack a 256 MiB tree into a signed layer and compare with
// `mkfs.erofs` + `veritysetup format` run alone on the same tree in the same run (target:
// at most 1.2×); then the full verify throughput (signatures + payload SHA-256 + whole tree).
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run as runTool } from '../common/exec.ts';
import { newIdentity, readCertificates, readPrivateKey } from '../keys/index.ts';
import { packLayer, verifyLayer } from '../layers/index.ts';

const EPOCH = 1_700_000_000;

export async function run(_argv: string[]): Promise<void> {
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
        services: [{ name: 'b', argv: ['/b'] }],
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
    const rounds = 3;
    let best = {
      ours: Number.POSITIVE_INFINITY,
      ref: Number.POSITIVE_INFINITY,
      verify: Number.POSITIVE_INFINITY,
    };
    let payloadSize = 0;
    let breakdown = '';
    let refSteps = '';
    for (let i = 0; i < rounds; i++) {
      const out = join(dir, 'bench.mwl');
      let t = performance.now();
      // Per-step times through the progress hook packLayer already calls.
      const steps: [string, number][] = [];
      const progress = {
        step: (name: string) => steps.push([name, performance.now()]),
        bytes: () => {},
        done: () => steps.push(['end', performance.now()]),
      };
      const r = await packLayer({ dir: src, key, chain, out, sourceDateEpoch: EPOCH, progress });
      const ours = performance.now() - t;
      if (ours < best.ours) {
        breakdown = steps
          .slice(0, -1)
          .map(([n, at], j) => `${n} ${((steps[j + 1]?.[1] ?? at) - at).toFixed(0)} ms`)
          .join(', ');
      }
      payloadSize = r.payloadSize;
      t = performance.now();
      await verifyLayer(out, { anchors: [root.certificate] });
      const verify = performance.now() - t;
      await rm(out);
      const img = join(dir, 'ref.erofs');
      t = performance.now();
      await runTool('mkfs.erofs', [`-T${EPOCH}`, '--ignore-mtime', '--all-root', '--quiet', img, rootfs], {
        timeout: 600_000,
      });
      const mkfsMs = performance.now() - t;
      await runTool('veritysetup', ['format', img, join(dir, 'ref.verity')], { timeout: 600_000 });
      const ref = performance.now() - t;
      if (ref < best.ref)
        refSteps = `mkfs.erofs ${mkfsMs.toFixed(0)} ms, veritysetup format ${(ref - mkfsMs).toFixed(0)} ms`;
      await rm(img);
      await rm(join(dir, 'ref.verity'));
      best = {
        ours: Math.min(best.ours, ours),
        ref: Math.min(best.ref, ref),
        verify: Math.min(best.verify, verify),
      };
    }
    const mbs = (n: number, ms: number) => (n / 1e6 / (ms / 1000)).toFixed(0);
    console.log(`tree: ${bytes / 2 ** 20} MiB in ${64 * 8 + 1024} files, page cache warm, best of ${rounds}`);
    console.log(
      `ours (mway-layer pack: check tree, erofs, sha256, verity, sign, write .mwl): ${best.ours.toFixed(0)} ms`,
    );
    console.log(
      `mkfs.erofs + veritysetup format alone:                                   ${best.ref.toFixed(0)} ms`,
    );
    console.log(`  steps: ${refSteps}`);
    console.log(`  our steps: ${breakdown}`);
    console.log(`ratio: ${(best.ours / best.ref).toFixed(2)}x (target ≤ 1.2x)`);
    console.log(
      `verify (signature + payload sha256 + whole hash tree): ${mbs(payloadSize, best.verify)} MB/s (${best.verify.toFixed(0)} ms for ${(payloadSize / 2 ** 20).toFixed(0)} MiB)`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
