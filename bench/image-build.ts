// `npm run bench -- image-build`: warm `mway-image build` of examples/default (kernel cached,
// dev keys present) and `verifyDisk` of the result, each against the host tools doing the
// bulk of that work on the same CoreOS tree in the same run: `mkfs.erofs` + `veritysetup
// format` (build) and `veritysetup verify` (verify). The ratio is what the whole assembly
// (closure, layer packing, signatures, ESP/UKI, GPT) and the full offline check cost over them.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run as runTool } from '../common/exec.ts';
import { buildCoreosTree } from '../imagebuild/coreos-tree.ts';
import { buildImage } from '../imagebuild/build-image.ts';
import { coreosAgentConfig } from '../imagebuild/coreos-paths.ts';
import { verifyDisk } from '../imagebuild/disk-verify.ts';
import { DEFAULT_SPEC, loadImageSpec } from '../imagebuild/image-spec.ts';
import { readCertificates } from '../keys/index.ts';

const EPOCH = 1_700_000_000;

export async function run(_argv: string[]): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'mway-bench-image-build-'));
  try {
    const spec = await loadImageSpec(DEFAULT_SPEC);
    const out = join(dir, 'out');
    // Warm-up: fetch/unpack the kernel once and make the dev keys.
    await buildImage({ spec, outDir: out, sourceDateEpoch: EPOCH });
    let best = { build: Number.POSITIVE_INFINITY, verify: Number.POSITIVE_INFINITY };
    let size = 0;
    for (let i = 0; i < 2; i++) {
      let t = performance.now();
      const r = await buildImage({ spec, outDir: out, sourceDateEpoch: EPOCH });
      const build = performance.now() - t;
      size = r.coreos.sizeBytes;
      const anchors = [
        ...(await readCertificates(join(out, 'keys', 'vendor-root.crt'))),
        ...(await readCertificates(join(out, 'keys', 'user-root.crt'))),
      ];
      t = performance.now();
      const v = await verifyDisk(r.disk, { anchors });
      const verify = performance.now() - t;
      if (!v.ok) throw new Error('bench: the built disk does not verify');
      best = { build: Math.min(best.build, build), verify: Math.min(best.verify, verify) };
    }
    // Reference: the same CoreOS tree through the host tools only.
    const tree = join(dir, 'tree');
    await buildCoreosTree(tree, spec, coreosAgentConfig({ peerIdentity: false, extra: spec.agent }));
    let ref = { build: Number.POSITIVE_INFINITY, verify: Number.POSITIVE_INFINITY };
    for (let i = 0; i < 2; i++) {
      await rm(join(dir, 'ref.erofs'), { force: true });
      await rm(join(dir, 'ref.verity'), { force: true });
      let t = performance.now();
      await runTool('mkfs.erofs', [`-T${EPOCH}`, '--all-root', '--quiet', join(dir, 'ref.erofs'), tree], {
        timeout: 600_000,
      });
      const f = await runTool('veritysetup', ['format', join(dir, 'ref.erofs'), join(dir, 'ref.verity')], {
        timeout: 600_000,
      });
      const build = performance.now() - t;
      const root = /Root hash:\s*([0-9a-f]{64})/.exec(f.stdout)?.[1] ?? '';
      t = performance.now();
      await runTool('veritysetup', ['verify', join(dir, 'ref.erofs'), join(dir, 'ref.verity'), root], {
        timeout: 600_000,
      });
      const verify = performance.now() - t;
      ref = { build: Math.min(ref.build, build), verify: Math.min(ref.verify, verify) };
    }
    const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    process.stdout.write(
      [
        `CoreOS erofs ${(size / 2 ** 20).toFixed(0)} MiB`,
        `mway-image build (warm, whole disk):       ${s(best.build)}`,
        `mkfs.erofs + veritysetup format (CoreOS):  ${s(ref.build)}`,
        `ratio: ${(best.build / ref.build).toFixed(2)}x`,
        `verifyDisk (GPT, all trees, all signatures): ${s(best.verify)}`,
        `veritysetup verify (CoreOS only):            ${s(ref.verify)}`,
        `ratio: ${(best.verify / ref.verify).toFixed(2)}x`,
        '',
      ].join('\n'),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
