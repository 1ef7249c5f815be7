// `npm run bench -- cli [--rounds N]`: start-up of each binary's `--help`, as a user runs it,
// against `node -e 0` (the floor: Node itself) in the same run, A and B in turns: once cold (no
// compile cache) and once with the compile cache the installed shims set (NODE_COMPILE_CACHE,
// scripts/install-bin.sh). Wall time from performance.now() around each run; CPU time from the
// children's user + system time the kernel accounts to this process once it has reaped them
// (/proc/self/stat cutime + cstime). Prints medians, the paired ratios and the load; figures go
// in doc/performance.md.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { run as runTool } from '../common/exec.ts';
import { intFlag } from './_flags.ts';
import { median, reapedChildrenCpu } from './_measure.ts';

const ROOT = join(import.meta.dirname, '..');
async function timed(
  cmd: string[],
  env: Record<string, string | undefined>,
): Promise<{ wall: number; cpu: number }> {
  const [file, ...args] = cmd as [string, ...string[]];
  const cpu0 = await reapedChildrenCpu();
  const t0 = performance.now();
  const r = await runTool(file, args, { timeout: 120_000, env, extendEnv: false });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(' ')} exited ${r.exitCode}: ${r.stderr.trim()}`);
  const wall = (performance.now() - t0) / 1000;
  return { wall, cpu: (await reapedChildrenCpu()) - cpu0 };
}

export async function run(argv: string[]): Promise<void> {
  const rounds = intFlag(argv, 'rounds', 10);
  const node = process.execPath;
  const bins = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')).bin as Record<string, string>;
  const cache = await mkdtemp(join(tmpdir(), 'mway-bench-cli-'));
  const load = () =>
    loadavg()
      .map((l) => l.toFixed(2))
      .join(' ');
  try {
    process.stdout.write(`load before: ${load()} (1/5/15 min); ${rounds} rounds each, 2 warm-up\n`);
    process.stdout.write(
      'binary           cache  ours wall s  node -e 0 s  wall ratio  ours cpu s  node cpu s  cpu ratio\n',
    );
    for (const [bin, entry] of Object.entries(bins)) {
      for (const cached of [false, true]) {
        const { NODE_COMPILE_CACHE: _, ...base } = process.env;
        const env = cached ? { ...base, NODE_COMPILE_CACHE: cache } : base;
        const ours = [node, join(ROOT, entry), '--help'];
        const floor = [node, '-e', '0'];
        for (let i = 0; i < 2; i++) await timed(ours, env);
        const a: { wall: number; cpu: number }[] = [];
        const b: { wall: number; cpu: number }[] = [];
        // In turns, who goes first alternating, so a burst of load hits both alike.
        for (let i = 0; i < rounds; i++) {
          if (i % 2 === 0) {
            a.push(await timed(ours, env));
            b.push(await timed(floor, env));
          } else {
            b.push(await timed(floor, env));
            a.push(await timed(ours, env));
          }
        }
        const paired = (k: 'wall' | 'cpu') => median(a.map((x, i) => x[k] / Math.max(b[i]?.[k] ?? 0, 0.001)));
        const m = (xs: typeof a, k: 'wall' | 'cpu') => median(xs.map((x) => x[k]));
        process.stdout.write(
          `${bin.padEnd(16)} ${(cached ? 'yes' : 'no').padEnd(5)}  ${m(a, 'wall').toFixed(3).padStart(11)}  ${m(b, 'wall').toFixed(3).padStart(11)}  ${paired('wall').toFixed(2).padStart(10)}  ${m(a, 'cpu').toFixed(2).padStart(10)}  ${m(b, 'cpu').toFixed(2).padStart(10)}  ${paired('cpu').toFixed(2).padStart(9)}\n`,
        );
      }
    }
    process.stdout.write(`load after: ${load()}\n`);
  } finally {
    await rm(cache, { recursive: true, force: true });
  }
}
