// `npm run bench -- verity [--rounds N] [--mib N]`: the same random file (1 GiB by default)
// through our formatVerity and through `veritysetup format`, same run, same salt/UUID;
// prints both throughputs (best and median of N rounds) and the ratio.
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { run as runTool } from '../common/exec.ts';
import { formatVerity } from '../formats/index.ts';
import { intFlag } from './_flags.ts';

const SALT = 'b2'.repeat(32);
const UUID = '12345678-1234-4234-9234-123456789abc';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};

export async function run(argv: string[]): Promise<void> {
  const rounds = intFlag(argv, 'rounds', 5);
  const mib = intFlag(argv, 'mib', 1024);
  const dir = await mkdtemp(join(tmpdir(), 'mway-bench-verity-'));
  try {
    const data = join(dir, 'data');
    const bytes = mib << 20;
    const fh = await open(data, 'w');
    for (let done = 0; done < bytes; done += 64 << 20)
      await fh.write(randomBytes(Math.min(64 << 20, bytes - done)));
    // Written back before timing, so neither tool competes with writeback; still in the page cache.
    await fh.sync();
    await fh.close();
    const load = loadavg()[0] ?? 0;
    const times = { ours: [] as number[], ref: [] as number[] };
    let roots = { ours: '', ref: '' };
    const ours = async () => {
      const t = performance.now();
      const r = await formatVerity(data, { hashPath: join(dir, 'ours'), salt: SALT, uuid: UUID });
      times.ours.push(performance.now() - t);
      roots = { ...roots, ours: r.rootHash };
    };
    const ref = async () => {
      await rm(join(dir, 'ref'), { force: true });
      const t = performance.now();
      const v = await runTool(
        'veritysetup',
        ['format', data, join(dir, 'ref'), '--salt', SALT, '--uuid', UUID],
        {
          timeout: 300_000,
        },
      );
      times.ref.push(performance.now() - t);
      roots = { ...roots, ref: /Root hash:\s+([0-9a-f]{64})/.exec(v.stdout)?.[1] ?? '' };
    };
    // Alternate which goes first, so neither always runs right after the other's page-cache use.
    for (let i = 0; i < rounds; i++) {
      if (i % 2 === 0) {
        await ours();
        await ref();
      } else {
        await ref();
        await ours();
      }
    }
    const same = (await readFile(join(dir, 'ours'))).equals(await readFile(join(dir, 'ref')));
    const mbs = (ms: number) => bytes / 1e6 / (ms / 1000);
    const line = (xs: number[]) => {
      const best = Math.min(...xs);
      return `best ${mbs(best).toFixed(0)} MB/s (${best.toFixed(0)} ms), median ${mbs(median(xs)).toFixed(0)} MB/s (${median(xs).toFixed(0)} ms)`;
    };
    console.log(
      `data: ${mib} MiB random, page cache warm, ${rounds} rounds, ${availableParallelism()} cores, load average ${load.toFixed(2)} before / ${(loadavg()[0] ?? 0).toFixed(2)} after`,
    );
    console.log(`ours (formatVerity, all cores): ${line(times.ours)}`);
    console.log(`veritysetup format:             ${line(times.ref)}`);
    console.log(
      `ratio: best ${(Math.min(...times.ref) / Math.min(...times.ours)).toFixed(2)}x, median ${(median(times.ref) / median(times.ours)).toFixed(2)}x`,
    );
    console.log(
      `root hashes equal: ${roots.ours === roots.ref} (${roots.ours}); hash files identical: ${same}`,
    );
    if (roots.ours !== roots.ref || !same) process.exitCode = 1;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
