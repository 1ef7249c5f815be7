// `npm run bench -- cli [--rounds N] [--only help|status] [--profile DIR]`: start-up of each binary's `--help`, as a user runs it,
// against `node -e 0` (the floor: Node itself) in the same run, A and B in turns: once cold (no
// compile cache) and once with the compile cache the installed shims set (NODE_COMPILE_CACHE,
// scripts/install-bin.sh). Wall time from performance.now() around each run; CPU time from the
// children's user + system time the kernel accounts to this process once it has reaped them
// (/proc/self/stat cutime + cstime). Then `mway status` to one peer on loopback, the same way
// against `node -e 0`: milkywaysrvd in its own process, one protocol-complete simulated peer
// (bench/_fleet-peer.ts: TLS 1.3, the agent's command check, signed status and result), and
// `mway` run as a user runs it, asking the broker's stored status (verified here) and asking the
// peer now (`--peer`, a signed command and its signed result). Prints medians, the paired ratios
// and the load; figures go in doc/performance.md.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { run as runTool } from '../common/exec.ts';
import { flagValue, intFlag } from './_flags.ts';
import { fleetPki } from './fleet.ts';
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

type Timing = { wall: number; cpu: number };

/** `a` and `b` in turns, who goes first alternating, so a burst of load hits both alike. */
async function pairs(
  ours: string[],
  floor: string[],
  env: Record<string, string | undefined>,
  rounds: number,
): Promise<{ a: Timing[]; b: Timing[] }> {
  for (let i = 0; i < 2; i++) await timed(ours, env);
  const a: Timing[] = [];
  const b: Timing[] = [];
  for (let i = 0; i < rounds; i++) {
    if (i % 2 === 0) {
      a.push(await timed(ours, env));
      b.push(await timed(floor, env));
    } else {
      b.push(await timed(floor, env));
      a.push(await timed(ours, env));
    }
  }
  return { a, b };
}

function row(name: string, cached: boolean, { a, b }: { a: Timing[]; b: Timing[] }): string {
  const paired = (k: 'wall' | 'cpu') => median(a.map((x, i) => x[k] / Math.max(b[i]?.[k] ?? 0, 0.001)));
  const m = (xs: Timing[], k: 'wall' | 'cpu') => median(xs.map((x) => x[k]));
  return `${name.padEnd(22)} ${(cached ? 'yes' : 'no').padEnd(5)}  ${m(a, 'wall').toFixed(3).padStart(11)}  ${m(b, 'wall').toFixed(3).padStart(11)}  ${paired('wall').toFixed(2).padStart(10)}  ${m(a, 'cpu').toFixed(2).padStart(10)}  ${m(b, 'cpu').toFixed(2).padStart(10)}  ${paired('cpu').toFixed(2).padStart(9)}\n`;
}

const HEAD =
  'command                cache  ours wall s  node -e 0 s  wall ratio  ours cpu s  node cpu s  cpu ratio\n';

/** A broker and one peer on 127.0.0.1 for `mway status`; `stop` ends both. */
async function onePeer(work: string): Promise<{ env: Record<string, string>; stop: () => void }> {
  const pki = await fleetPki(1);
  const config = join(work, 'broker.json');
  await writeFile(
    config,
    JSON.stringify({
      listen: '127.0.0.1:0',
      key: join(pki.dir, 'broker.key'),
      certificate: join(pki.dir, 'broker.crt'),
      anchors: [join(pki.dir, 'root.crt')],
      database: join(work, 'broker.db'),
      mdns: { enabled: false },
    }),
  );
  const kills: Array<() => void> = [];
  const stop = () => {
    for (const k of kills) k();
  };
  try {
    // Long-running children read line by line: common/exec run() waits for exit, so execa here,
    // with a timeout and a kill in stop().
    const firstLine = async (
      child: { stdout: NodeJS.ReadableStream | null } & PromiseLike<{ stderr?: unknown; exitCode?: number }>,
      what: string,
      want: RegExp,
    ): Promise<string> =>
      new Promise<string>((resolve, reject) => {
        let buf = '';
        child.stdout?.on('data', (d: Buffer) => {
          buf += d.toString();
          if (want.test(buf)) resolve(buf.slice(0, buf.indexOf('\n')));
        });
        void child.then((r) => reject(new Error(`${what} exited: ${String(r.stderr ?? r.exitCode)}`)));
      });
    const broker = execa(
      process.execPath,
      [join(ROOT, 'control/broker/bin/milkywaysrvd.ts'), '--config', config, '--json'],
      { timeout: 3_600_000, reject: false, buffer: false },
    );
    kills.push(() => broker.kill('SIGKILL'));
    const address = (
      JSON.parse(await firstLine(broker, 'milkywaysrvd', /\n/)) as { result: { listening: string } }
    ).result.listening;
    const job = join(work, 'peer.json');
    await writeFile(
      job,
      JSON.stringify({
        address,
        anchorsPath: join(pki.dir, 'root.crt'),
        operatorCertPath: join(pki.dir, 'operator.crt'),
        stateDir: join(work, 'peers'),
        fleet: 'bench',
        group: 'bench',
        peers: pki.peers,
        status: true,
      }),
    );
    const peer = execa(process.execPath, [join(ROOT, 'bench/_fleet-peer.ts'), job], {
      timeout: 3_600_000,
      reject: false,
      buffer: false,
      stderr: 'inherit',
    });
    kills.push(() => peer.kill('SIGKILL'));
    await firstLine(peer, 'the simulated peer', /ready 1/);
    const env = { MWAY_CONFIG_DIR: join(work, 'mway') };
    const init = [
      ...['config', 'init', '--broker', address, '--fleet', 'bench'],
      ...['--key', join(pki.dir, 'operator.key'), '--cert', join(pki.dir, 'operator.crt')],
      ...['--anchor', join(pki.dir, 'root.crt')],
    ];
    await timed([process.execPath, join(ROOT, 'control/operator/bin/mway.ts'), ...init], {
      ...process.env,
      ...env,
    });
    return { env, stop };
  } catch (e) {
    stop();
    throw e;
  }
}

export async function run(argv: string[]): Promise<void> {
  const rounds = intFlag(argv, 'rounds', 10);
  const only = flagValue(argv, 'only');
  const node = process.execPath;
  const bins = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')).bin as Record<string, string>;
  const cache = await mkdtemp(join(tmpdir(), 'mway-bench-cli-'));
  const load = () =>
    loadavg()
      .map((l) => l.toFixed(2))
      .join(' ');
  try {
    process.stdout.write(`load before: ${load()} (1/5/15 min); ${rounds} rounds each, 2 warm-up\n`);
    process.stdout.write(HEAD);
    const { NODE_COMPILE_CACHE: _, ...base } = process.env;
    const floor = [node, '-e', '0'];
    if (only !== 'status') {
      for (const [bin, entry] of Object.entries(bins)) {
        for (const cached of [false, true]) {
          const env = cached ? { ...base, NODE_COMPILE_CACHE: cache } : base;
          const r = await pairs([node, join(ROOT, entry), '--help'], floor, env, rounds);
          process.stdout.write(row(`${bin} --help`, cached, r));
        }
      }
    }
    if (only !== 'help') {
      const work = await mkdtemp(join(tmpdir(), 'mway-bench-cli-status-'));
      const fleet = await onePeer(work);
      try {
        const mway = join(ROOT, bins.mway as string);
        for (const cached of [false, true]) {
          const env = { ...base, ...fleet.env, ...(cached ? { NODE_COMPILE_CACHE: cache } : {}) };
          const stored = await pairs([node, mway, 'status'], floor, env, rounds);
          process.stdout.write(row('mway status (stored)', cached, stored));
          const live = await pairs([node, mway, 'status', '--peer', 'peer-1'], floor, env, rounds);
          process.stdout.write(row('mway status --peer', cached, live));
        }
        const profile = flagValue(argv, 'profile');
        if (profile !== undefined) {
          // One more run of each, cached, with V8's CPU profile (what loads, what runs).
          const env = { ...base, ...fleet.env, NODE_COMPILE_CACHE: cache };
          for (const args of [['status'], ['status', '--peer', 'peer-1']])
            await timed([node, '--cpu-prof', `--cpu-prof-dir=${profile}`, mway, ...args], env);
          process.stdout.write(`(CPU profiles of mway status, stored and --peer, in ${profile})\n`);
        }
        const shown = await runTool(node, [mway, 'status'], {
          timeout: 60_000,
          env: { ...base, ...fleet.env },
          extendEnv: false,
        });
        process.stdout.write(`(mway status printed: ${shown.stdout.trim().split('\n')[0]})\n`);
      } finally {
        fleet.stop();
        await rm(work, { recursive: true, force: true });
      }
    }
    process.stdout.write(`load after: ${load()}\n`);
  } finally {
    await rm(cache, { recursive: true, force: true });
  }
}
