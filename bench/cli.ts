// `npm run bench -- cli [--rounds N]`: start-up of each binary's `--help`, as a user runs it,
// against `node -e 0` (the floor: Node itself) in the same run, through farm-bench (A and B in
// turns, ratio pair by pair): once cold (no compile cache) and once with the compile cache the
// installed shims set (NODE_COMPILE_CACHE, scripts/install-bin.sh). Prints the medians, the
// ratios and the load; figures go in doc/performance.md.
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { run as runTool } from '../common/exec.ts';
import { intFlag } from './_flags.ts';

const ROOT = join(import.meta.dirname, '..');
const BINS = {
  mway: 'control/operator/bin/mway.ts',
  'mway-image': 'imagebuild/bin/mway-image.ts',
  'mway-layer': 'layers/bin/mway-layer.ts',
  milkywaysrvd: 'control/broker/bin/milkywaysrvd.ts',
  'milkyway-agent': 'agent/bin/milkyway-agent.ts',
} as const;

/** farm-bench's median of one row (`A wall s   min  median  max`). */
function median(out: string, row: string): number {
  const m = new RegExp(
    `^${row.replace(/[/ ]/g, (c) => (c === ' ' ? '\\s+' : '\\/'))}\\s+(\\S+)\\s+(\\S+)`,
    'm',
  ).exec(out);
  return Number(m?.[2]);
}

export async function run(argv: string[]): Promise<void> {
  const rounds = intFlag(argv, 'rounds', 10);
  const node = process.execPath;
  const cache = await mkdtemp(join(tmpdir(), 'mway-bench-cli-'));
  try {
    process.stdout.write(
      `load before: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')} (1/5/15 min)\n`,
    );
    process.stdout.write('binary           cache  ours wall s  node -e 0 s  wall ratio  cpu ratio\n');
    for (const [bin, entry] of Object.entries(BINS)) {
      for (const cached of [false, true]) {
        const env = cached ? ['env', `NODE_COMPILE_CACHE=${cache}`] : ['env', '-u', 'NODE_COMPILE_CACHE'];
        const r = await runTool(
          'farm-bench',
          [
            '-n',
            String(rounds),
            '--warmup',
            '2',
            '--timeout',
            '600',
            '--vs',
            `${node} -e 0`,
            '--',
            ...env,
            node,
            join(ROOT, entry),
            '--help',
          ],
          { timeout: 700_000 },
        );
        const out = r.stdout + r.stderr;
        const a = median(out, 'A wall s');
        const b = median(out, 'B wall s');
        process.stdout.write(
          `${bin.padEnd(16)} ${(cached ? 'yes' : 'no').padEnd(5)}  ${a.toFixed(3).padStart(11)}  ${b.toFixed(3).padStart(11)}  ${median(out, 'A/B wall').toFixed(2).padStart(10)}  ${median(out, 'A/B cpu').toFixed(2).padStart(9)}\n`,
        );
      }
    }
    process.stdout.write(
      `load after: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}\n`,
    );
  } finally {
    await rm(cache, { recursive: true, force: true });
  }
}
