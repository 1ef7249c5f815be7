// Child program for zombies.test.ts, run as PID 1 of a new PID namespace: supervises a
// service that double-forks (its grandchildren are orphaned and exit), then reports every
// zombie in the namespace as JSON on stdout.
import { readdir, readFile } from 'node:fs/promises';
import { Supervisor } from '../../../agent/services/supervisor.ts';
import { spec } from '../services/_service-fixture.ts';

const [runDir] = process.argv.slice(2);
if (runDir === undefined) throw new Error('usage: zombie-child.ts RUNDIR');
const sup = new Supervisor({
  cgroupRoot: undefined,
  runDir,
  logDir: undefined,
  logConfig: { ringLines: 100, fileBytes: 1 << 20, files: 1, rateLinesPerSecond: 1000 },
  emit: () => {},
  log: () => {},
});
// Each round: a child that forks a grandchild and exits at once; the grandchild is
// orphaned, sleeps briefly and exits — someone must reap it.
const script = 'for i in 1 2 3 4 5 6 7 8 9 10; do ( sleep 0.05 & ) ; done; echo forked; exec sleep 30';
sup.add(spec('fork/fork', script));
// One that ignores SIGTERM, so its stop ends with SIGKILL.
sup.add(spec('stub/stub', 'trap "" TERM; while :; do sleep 0.05; done', { timeoutStopSec: 0.3 }));
await sup.startAll();
await new Promise((r) => setTimeout(r, 1500));
async function scan(): Promise<string[]> {
  const zombies: string[] = [];
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const status = await readFile(`/proc/${d}/status`, 'utf8');
      if (/^State:\s+Z/m.test(status)) zombies.push(`${d} ${/^Name:\s+(.*)$/m.exec(status)?.[1] ?? ''}`);
    } catch {
      // exited meanwhile
    }
  }
  return zombies;
}
const whileRunning = await scan();
const log = sup
  .get('fork/fork')
  .ctx.log.tail(10)
  .map((l) => l.text);
// Stopping (and starting again) must not leave the sandbox's own helpers behind either.
await sup.stopAll();
await sup.startAll();
await sup.stopAll();
await new Promise((r) => setTimeout(r, 300));
const afterStop = await scan();
const stub = sup
  .get('stub/stub')
  .ctx.log.tail(20)
  .map((l) => l.text);
process.stdout.write(`${JSON.stringify({ pid: process.pid, whileRunning, afterStop, log, stub })}\n`);
process.exit(0);
