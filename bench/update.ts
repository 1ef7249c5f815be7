// `npm run bench -- update [--rounds N] [--mib N]`: the A/B update's host-side costs against the
// tools that do the same work, measured in the same run on the same bytes (a CoreOS of --mib
// MiB, default 192 — the default image's is ~190 — its verity tree, its signature and a 15 MiB
// stage 2):
//  1. verify: verifyBundle (envelope, every member's SHA-256, every verity block, the CoreOS
//     signature, the stage 2's ML-DSA descriptor and digests) against `veritysetup verify` of
//     the erofs and tree alone, and our verity check alone (verifyVerity) against the same;
//  2. write + verify: installToSlot into a disk image (clear the slot, copy, fsync, read back
//     through verity, arm) against `dd … conv=fsync` of the same members followed by
//     `veritysetup verify` of what dd wrote;
//  3. create: createBundle (digests, vendor signature, the container, the self-check) against
//     `tar -cf` of the same members followed by `veritysetup verify`.
// Each line: best and median of N rounds, the ratio reference/ours (above 1: ours is faster).
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { run as runTool } from '../common/exec.ts';
import { DPS, verifyVerity, writeGpt } from '../formats/index.ts';
import { MILKYWAY } from '../platform/index.ts';
import {
  createBundle,
  encodeSlot,
  installToSlot,
  readBundleLayout,
  slotUuids,
  verifyBundle,
} from '../update/index.ts';
import { devKeys, makeCoreos, makeStage2, NOW } from '../test/update/_slot-disk.ts';
import { intFlag } from './_flags.ts';
import { median } from './_measure.ts';

const MiB = 1024 * 1024;

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}

export async function run(argv: string[]): Promise<void> {
  const rounds = intFlag(argv, 'rounds', 3);
  const mib = intFlag(argv, 'mib', 192);
  const dir = await mkdtemp(join(tmpdir(), 'mway-bench-update-'));
  try {
    const keys = await devKeys(dir);
    // makeCoreos's filler is one repeated byte; erofs stores it uncompressed, so the bytes hashed are mib MiB.
    const v1 = await makeCoreos(dir, keys, { version: '1.0' });
    const v2 = await makeCoreos(dir, keys, { version: '2.0', fillerBytes: mib * MiB });
    const stage2 = await makeStage2(dir, keys, v2, {
      version: '2.0',
      rollbackIndex: 2,
      kernelBytes: 15 * MiB,
    });
    const files = { erofs: v2.erofs, verity: v2.verity, veritySig: v2.veritySig, stage2 };
    const bundlePath = (i: number) => join(dir, `b${i}.mwu`);
    const create = (out: string) =>
      createBundle({
        out,
        name: 'milkyway',
        version: '2.0',
        rollbackIndex: 2,
        architecture: 'x86_64',
        rootHash: v2.rootHash,
        files,
        key: keys.vendor.key,
        chain: keys.vendor.chain,
        anchors: [keys.vendorRoot],
        now: NOW,
      });
    const bundle = bundlePath(0);
    await create(bundle);
    const bundleBytes = (await stat(bundle)).size;
    const erofsBytes = (await stat(v2.erofs)).size;
    const anchors = [keys.vendorRoot];

    // A disk shaped as built: boot-a/boot-b, two CoreOS slots sized for v2, a data partition.
    const disk = join(dir, 'disk.img');
    const ids = slotUuids(v1.rootHash);
    const slot = Math.ceil(erofsBytes / MiB) + 1;
    await writeGpt(disk, {
      sizeBytes: (2 * (slot + 4 + 1 + 32) + 4) * MiB,
      partitions: [
        {
          name: 'boot-a',
          type: MILKYWAY.boot,
          sizeBytes: 32 * MiB,
          attributes: { other: encodeSlot(0n, { priority: 2, tries: 0, successful: true }) },
          image: await makeStage2(dir, keys, v1, { version: '1.0', rollbackIndex: 1 }),
        },
        { name: 'boot-b', type: MILKYWAY.boot, sizeBytes: 32 * MiB },
        { name: 'milkyway_1.0', type: DPS.root, uuid: ids.data, sizeBytes: slot * MiB, image: v1.erofs },
        {
          name: 'milkyway_1.0.verity',
          type: DPS.rootVerity,
          uuid: ids.hash,
          sizeBytes: 4 * MiB,
          image: v1.verity,
        },
        {
          name: 'milkyway_1.0.verity-sig',
          type: MILKYWAY.coreosVeritySig,
          sizeBytes: MiB,
          image: v1.veritySig,
        },
        { name: '_empty', type: DPS.root, sizeBytes: slot * MiB },
        { name: '_empty', type: DPS.rootVerity, sizeBytes: 4 * MiB },
        { name: '_empty', type: MILKYWAY.coreosVeritySig, sizeBytes: MiB },
        { name: 'data', type: MILKYWAY.data, sizeBytes: 2 * MiB },
      ],
    });
    const verified = await verifyBundle(bundle, { anchors, at: NOW });
    const [erofsM, verityM, sigM, stage2M] = readBundleLayout(bundle).members;
    const dd = (m: typeof erofsM, out: string) =>
      runTool(
        'dd',
        [
          `if=${bundle}`,
          `of=${out}`,
          'bs=4M',
          `skip=${m.offset}`,
          `count=${m.size}`,
          'iflag=skip_bytes,count_bytes',
          'conv=fsync',
          'status=none',
        ],
        { timeout: 600_000 },
      );
    const veritysetup = (data: string, hash: string) =>
      runTool('veritysetup', ['verify', data, hash, v2.rootHash], { timeout: 600_000 });

    const load = loadavg()[0] ?? 0;
    const t = {
      verifyOurs: [] as number[],
      verityOurs: [] as number[],
      verityRef: [] as number[],
      installOurs: [] as number[],
      installRef: [] as number[],
      createOurs: [] as number[],
      createRef: [] as number[],
    };
    for (let i = 0; i < rounds; i++) {
      // Alternate which goes first, so neither always runs right after the other's page-cache use.
      const pair = async (a: () => Promise<void>, b: () => Promise<void>) => {
        if (i % 2 === 0) {
          await a();
          await b();
        } else {
          await b();
          await a();
        }
      };
      await pair(
        async () => {
          t.verifyOurs.push(await timed(() => verifyBundle(bundle, { anchors, at: NOW })));
        },
        async () => {
          t.verityRef.push(await timed(() => veritysetup(v2.erofs, v2.verity)));
        },
      );
      t.verityOurs.push(await timed(() => verifyVerity(v2.erofs, v2.verity, v2.rootHash)));
      await pair(
        async () => {
          t.installOurs.push(await timed(() => installToSlot(disk, bundle, verified, { running: 'a' })));
        },
        async () => {
          t.installRef.push(
            await timed(async () => {
              for (const [m, out] of [
                [erofsM, 'w.erofs'],
                [verityM, 'w.verity'],
                [sigM, 'w.sig'],
                [stage2M, 'w.stage2'],
              ] as const)
                await dd(m, join(dir, out));
              await veritysetup(join(dir, 'w.erofs'), join(dir, 'w.verity'));
            }),
          );
        },
      );
      await pair(
        async () => {
          const out = bundlePath(i + 1);
          t.createOurs.push(await timed(() => create(out)));
          await rm(out);
        },
        async () => {
          const out = join(dir, 'ref.tar');
          t.createRef.push(
            await timed(async () => {
              await runTool(
                'tar',
                ['-cf', out, '-C', dir, ...Object.values(files).map((f) => f.slice(dir.length + 1))],
                {
                  timeout: 600_000,
                },
              );
              await veritysetup(v2.erofs, v2.verity);
            }),
          );
          await rm(out);
        },
      );
    }
    const mbs = (bytes: number, ms: number) => `${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;
    const fig = (xs: number[], bytes: number) =>
      `best ${Math.min(...xs).toFixed(0)} ms (${mbs(bytes, Math.min(...xs))}), median ${median(xs).toFixed(0)} ms`;
    const ratio = (ref: number[], ours: number[]) =>
      `ratio reference/ours: best ${(Math.min(...ref) / Math.min(...ours)).toFixed(2)}x, median ${(median(ref) / median(ours)).toFixed(2)}x`;
    console.log(
      `CoreOS ${(erofsBytes / MiB).toFixed(0)} MiB, bundle ${(bundleBytes / MiB).toFixed(0)} MiB, page cache warm, ${rounds} rounds, ${availableParallelism()} cores, load average ${load.toFixed(2)} before / ${(loadavg()[0] ?? 0).toFixed(2)} after`,
    );
    console.log(`verify   ours verifyBundle (whole bundle):      ${fig(t.verifyOurs, bundleBytes)}`);
    console.log(`         ours verifyVerity (erofs + tree):      ${fig(t.verityOurs, erofsBytes)}`);
    console.log(`         veritysetup verify (erofs + tree):     ${fig(t.verityRef, erofsBytes)}`);
    console.log(`         bundle vs veritysetup ${ratio(t.verityRef, t.verifyOurs)}`);
    console.log(`         verity vs veritysetup ${ratio(t.verityRef, t.verityOurs)}`);
    console.log(`install  ours installToSlot (write + verify):   ${fig(t.installOurs, bundleBytes)}`);
    console.log(`         dd conv=fsync + veritysetup verify:    ${fig(t.installRef, bundleBytes)}`);
    console.log(`         ${ratio(t.installRef, t.installOurs)}`);
    console.log(`create   ours createBundle (sign + self-check): ${fig(t.createOurs, bundleBytes)}`);
    console.log(`         tar -cf + veritysetup verify:          ${fig(t.createRef, bundleBytes)}`);
    console.log(`         ${ratio(t.createRef, t.createOurs)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
