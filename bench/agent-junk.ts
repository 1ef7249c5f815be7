// `npm run bench -- agent-junk [--junk N] [--rounds N]`: the agent's boot with N junk files
// (default 10,000; one in ten named `*.mwl`, the rest `*.bin` / `*.tmp`, 64–575 random bytes) on
// its layers partition beside 3 good signed app layers, against the same agent and layers on a
// clean partition, booted in turns (A B A B …, so drift in the machine's load hits both) in
// namespace mode with userspace verity. Each junk `*.mwl` must be refused with its code
// (`boot done: … N layers refused`), the others skipped by name. Reference tools from the same
// run: `ls -l` of the partition (a readdir and an lstat of every entry, the floor of looking at
// them) and `head -c 4096` of every junk `*.mwl` (opening and reading each one the agent must
// refuse). Figures: time from spawning the agent to `boot done:`, median of the rounds.
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { run as runTool } from '../common/exec.ts';
import { buildTestLayer } from '../test/agent/_layers.ts';
import { benchPki, type Measured, makeRoot, measure } from './agent.ts';
import { intFlag } from './_flags.ts';

const GOOD_LAYERS = 3;

const load = () =>
  loadavg()
    .map((x) => x.toFixed(1))
    .join(' / ');

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

/** The junk of the hostile-partition test (test/agent/layers/hostile-partition.test.ts). */
async function writeJunk(layers: string, n: number): Promise<number> {
  let mwl = 0;
  for (let i = 0; i < n; i++) {
    const name = i % 10 === 0 ? `junk-${i}.mwl` : `junk-${i}.${i % 3 === 0 ? 'bin' : 'tmp'}`;
    if (name.endsWith('.mwl')) mwl++;
    await writeFile(join(layers, name), randomBytes(64 + (i % 512)));
  }
  return mwl;
}

async function timeShell(script: string, dir: string): Promise<number> {
  const t = performance.now();
  await runTool('/bin/sh', ['-c', script, 'sh', dir], { timeout: 120_000 });
  return performance.now() - t;
}

export async function run(argv: string[]): Promise<void> {
  const junk = intFlag(argv, 'junk', 10_000);
  const rounds = intFlag(argv, 'rounds', 5);
  const dir = await mkdtemp(join(tmpdir(), 'mway-bench-agent-junk-'));
  try {
    const pki = await benchPki(dir);
    // makeRoot names its root after the layer count: the two partitions get different counts.
    const clean = await makeRoot(dir, pki, GOOD_LAYERS);
    const hostile = await makeRoot(dir, pki, GOOD_LAYERS + junk);
    for (let i = 0; i < GOOD_LAYERS; i++) {
      const name = `app${i}`;
      await buildTestLayer(
        pki,
        {
          name,
          kind: 'app',
          files: { [`etc/${name}`]: name },
          services: [{ name, execStart: ['/bin/sleep', '3600'] }],
        },
        join(clean.root, 'layers', `${name}.mwl`),
      );
    }
    await rm(join(hostile.root, 'layers'), { recursive: true });
    await cp(join(clean.root, 'layers'), join(hostile.root, 'layers'), { recursive: true });
    const junkMwl = await writeJunk(join(hostile.root, 'layers'), junk);
    const before = load();
    // Untimed: fills the agent's compile cache and the page cache of both partitions.
    await measure(clean.root, clean.config, undefined, { settleMs: 0 });
    const warm = await measure(hostile.root, hostile.config, undefined, { settleMs: 0 });
    const refused = Number(/(\d+) layers refused/.exec(warm.line)?.[1] ?? -1);
    if (refused !== junkMwl)
      throw new Error(`expected ${junkMwl} junk layers refused, the agent said: ${warm.line}`);
    const a: Measured[] = [];
    const b: Measured[] = [];
    for (let i = 0; i < rounds; i++) {
      a.push(await measure(hostile.root, hostile.config, undefined, { settleMs: 0 }));
      b.push(await measure(clean.root, clean.config, undefined, { settleMs: 0 }));
    }
    const layersDir = join(hostile.root, 'layers');
    const ls: number[] = [];
    const head: number[] = [];
    for (let i = 0; i < rounds; i++) {
      ls.push(await timeShell('ls -l "$1" >/dev/null', layersDir));
      head.push(
        await timeShell('for f in "$1"/junk-*.mwl; do head -c 4096 "$f"; done >/dev/null', layersDir),
      );
    }
    const after = load();
    const ma = median(a.map((m) => m.readyMs));
    const mb = median(b.map((m) => m.readyMs));
    const pairs = a.map((m, i) => m.readyMs / (b[i] as Measured).readyMs);
    console.log(`load before ${before}, after ${after} (1 / 5 / 15 min, 2 cores)`);
    console.log(`hostile partition: ${warm.line}`);
    console.log(
      `agent boot, ${GOOD_LAYERS} layers + ${junk} junk files (${junkMwl} named *.mwl): ${ma.toFixed(0)} ms median of ${rounds} (${a.map((m) => m.readyMs.toFixed(0)).join(', ')})`,
    );
    console.log(
      `agent boot, same ${GOOD_LAYERS} layers, clean partition (reference): ${mb.toFixed(0)} ms median of ${rounds} (${b.map((m) => m.readyMs.toFixed(0)).join(', ')})`,
    );
    console.log(
      `ratio hostile / clean: ${(ma / mb).toFixed(2)}x (paired per round: median ${median(pairs).toFixed(2)}x); cost of the junk: ${(ma - mb).toFixed(0)} ms, ${(((ma - mb) / junk) * 1000).toFixed(0)} µs per junk file`,
    );
    const ca = median(a.map((m) => m.cpuMs));
    const cb = median(b.map((m) => m.cpuMs));
    console.log(
      `agent CPU to boot done (user + system, steadier under load): ${ca.toFixed(0)} ms with the junk, ${cb.toFixed(0)} ms without: ${(ca / cb).toFixed(2)}x, ${(((ca - cb) / junk) * 1000).toFixed(0)} µs per junk file`,
    );
    console.log(
      `reference tools: ls -l of the ${junk + GOOD_LAYERS} entries ${median(ls).toFixed(0)} ms; head -c 4096 of the ${junkMwl} junk *.mwl ${median(head).toFixed(0)} ms (medians of ${rounds})`,
    );
    console.log(
      `agent's junk cost / (ls -l + head): ${((ma - mb) / (median(ls) + median(head))).toFixed(2)}x; RSS at boot done ${(Math.max(...a.map((m) => m.rssKiB)) / 1024).toFixed(1)} MiB with the junk, ${(Math.max(...b.map((m) => m.rssKiB)) / 1024).toFixed(1)} MiB without (worst of ${rounds})`,
    );
  } finally {
    for (const d of await readdir('/sys/fs/cgroup/unified').catch(() => [] as string[])) {
      if (d.startsWith(`mway-bench-${process.pid}-`))
        await rmdir(join('/sys/fs/cgroup/unified', d)).catch(() => {});
    }
    await rm(dir, { recursive: true, force: true });
  }
}
