// `npm run bench -- verity`: the same ~1 GiB random file through our formatVerity and
// through `veritysetup format`, same run, same salt/UUID; prints both throughputs and the ratio.
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run as runTool } from '../common/exec.ts';
import { formatVerity } from '../imagebuild/verity-format.ts';

const SALT = 'b2'.repeat(32);
const UUID = '12345678-1234-4234-9234-123456789abc';

export async function run(_argv: string[]): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'mway-bench-verity-'));
  try {
    const data = join(dir, 'data');
    const bytes = 1 << 30;
    const fh = await open(data, 'w');
    for (let done = 0; done < bytes; done += 64 << 20) await fh.write(randomBytes(64 << 20));
    await fh.close();
    const rounds = 3;
    let best = { ours: Number.POSITIVE_INFINITY, ref: Number.POSITIVE_INFINITY };
    let roots = { ours: '', ref: '' };
    for (let i = 0; i < rounds; i++) {
      let t = performance.now();
      const r = await formatVerity(data, { hashPath: join(dir, 'ours'), salt: SALT, uuid: UUID });
      const ours = performance.now() - t;
      await rm(join(dir, 'ref'), { force: true });
      t = performance.now();
      const v = await runTool(
        'veritysetup',
        ['format', data, join(dir, 'ref'), '--salt', SALT, '--uuid', UUID],
        {
          timeout: 300_000,
        },
      );
      const ref = performance.now() - t;
      best = { ours: Math.min(best.ours, ours), ref: Math.min(best.ref, ref) };
      roots = { ours: r.rootHash, ref: /Root hash:\s+([0-9a-f]{64})/.exec(v.stdout)?.[1] ?? '' };
    }
    const same = (await readFile(join(dir, 'ours'))).equals(await readFile(join(dir, 'ref')));
    const mbs = (ms: number) => bytes / 1e6 / (ms / 1000);
    console.log(`data: ${bytes / 2 ** 20} MiB random, page cache warm, best of ${rounds}`);
    console.log(
      `ours (formatVerity, worker threads): ${mbs(best.ours).toFixed(0)} MB/s (${best.ours.toFixed(0)} ms)`,
    );
    console.log(
      `veritysetup format:                 ${mbs(best.ref).toFixed(0)} MB/s (${best.ref.toFixed(0)} ms)`,
    );
    console.log(`ratio: ${(best.ref / best.ours).toFixed(2)}x`);
    console.log(
      `root hashes equal: ${roots.ours === roots.ref} (${roots.ours}); hash files identical: ${same}`,
    );
    if (roots.ours !== roots.ref || !same) process.exitCode = 1;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
