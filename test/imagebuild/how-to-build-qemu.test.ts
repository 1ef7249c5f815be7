// doc/how-to-build-an-image.md, executed as written (SLOW: two builds, one QEMU TCG boot of
// 2–6 min, two more builds). Every `sh` block's command runs through `sh -c` in a scratch
// folder that links to the repository, so `out/` and `my/` land there; the test knows what
// each command must do, and fails on a command the page has that it does not know, so the
// page and the test cannot drift apart. The `run` command boots the default disk with its
// forward of port 8080; the test fetches the layer's page and presses Ctrl-C (SIGINT to the
// command's process group, as a terminal does), which must power the guest off cleanly.
import test from 'ava';
import { execa } from 'execa';
import { open, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { readGpt } from '../../formats/index.ts';
import { part } from '../../imagebuild/disk-read.ts';
import { ROOT, tempDir } from '../helpers.ts';

const DOC = join(ROOT, 'doc', 'how-to-build-an-image.md');
const STEP_MS = 20 * 60_000;

/** The commands of the page's `sh` blocks, in order (a trailing `\` joins lines). */
async function commands(): Promise<string[]> {
  const text = await readFile(DOC, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/```sh\n([\s\S]*?)```/g))
    out.push(
      ...(m[1] ?? '')
        .replace(/\\\n\s*/g, '')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '' && !l.startsWith('#')),
    );
  return out;
}

/** The page's example `verify` failure line, `…` standing for anything. */
async function failureExample(): Promise<RegExp> {
  const text = await readFile(DOC, 'utf8');
  const line = /```\n(FAIL[^\n]*)\n```/.exec(text)?.[1];
  if (line === undefined) throw new Error('the page has no example FAIL line');
  const esc = line.split('…').map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(esc.join('.*'));
}

async function portFree(port: number): Promise<boolean> {
  const s = createServer();
  return new Promise((done) => {
    s.once('error', () => done(false));
    s.listen(port, '127.0.0.1', () => s.close(() => done(true)));
  });
}

/** A folder that looks like the checkout (every top-level entry linked) but has its own out/ and my/. */
async function scratchCheckout(dir: string): Promise<void> {
  for (const e of await readdir(ROOT))
    if (!['out', 'my', '.git'].includes(e)) await symlink(join(ROOT, e), join(dir, e));
}

/** One command of the page through `sh -c`, as a user's shell runs it. */
async function sh(
  cmd: string,
  cwd: string,
): Promise<{ exitCode: number | undefined; all: string; stdout: string }> {
  const r = await execa('sh', ['-c', cmd], { cwd, reject: false, all: true, timeout: STEP_MS });
  return { exitCode: r.exitCode, all: r.all, stdout: r.stdout };
}

test.serial(
  'doc/how-to-build-an-image.md: every command runs as written and does what the page says',
  async (t) => {
    t.timeout(5 * STEP_MS);
    const dir = await tempDir(t, 'mway-howto-');
    t.teardown(() => rm(join(dir, 'out'), { recursive: true, force: true }));
    await scratchCheckout(dir);
    const cmds = await commands();
    const known = [
      /^npm run mway-image -- build -o out\/default$/,
      /^npm run mway-image -- run out\/default\/disk\.img --forward 8080:8080$/,
      /^npm run mway-image -- inspect out\/default\/disk\.img$/,
      /^npm run mway-image -- verify out\/default\/disk\.img --trust out\/default\/keys\/vendor-root\.crt --trust out\/default\/keys\/user-root\.crt$/,
      /^cp -r examples\/default my$/,
      /^npm run mway-image -- spec validate my\/image\.json$/,
      /^SOURCE_DATE_EPOCH=1700000000 npm run mway-image -- build my\/image\.json -o out\/mine$/,
      /^SOURCE_DATE_EPOCH=1700000000 npm run mway-image -- build my\/image\.json -o out\/again --keys out\/mine\/keys$/,
      /^cmp out\/mine\/disk\.img out\/again\/disk\.img$/,
    ];
    t.deepEqual(
      cmds.map((c) => known.findIndex((re) => re.test(c))),
      known.map((_, i) => i),
      `the page's commands changed; teach this test what they do:\n${cmds.join('\n')}`,
    );
    const [build, boot, inspect, verify, ...own] = cmds as [string, string, string, string, ...string[]];

    const b = await sh(build, dir);
    t.is(b.exitCode, 0, b.all);
    t.regex(b.all, /Built .*out\/default\/disk\.img/);
    t.regex(b.all, /generated development keys/);

    // Boot, fetch the layer's page through the forward, press Ctrl-C.
    t.true(await portFree(8080), 'port 8080 on 127.0.0.1 is taken: the page forwards it');
    const q = execa('sh', ['-c', boot], {
      cwd: dir,
      reject: false,
      all: true,
      detached: true,
      timeout: STEP_MS,
    });
    let ended = false;
    void q.then(() => {
      ended = true;
    });
    t.teardown(() => {
      if (!ended && q.pid !== undefined) process.kill(-q.pid, 'SIGKILL');
    });
    let serial = '';
    const seen = new Promise<boolean>((resolve) => {
      q.all?.on('data', (d: Buffer) => {
        serial += d.toString();
        if (/milkyway-agent info: boot done:/.test(serial)) resolve(true);
      });
      void q.then(() => resolve(false));
    });
    t.true(await seen, serial.slice(-3000));
    let body = '';
    for (let i = 0; i < 30 && body === ''; i++) {
      try {
        const res = await fetch('http://127.0.0.1:8080/', { signal: AbortSignal.timeout(10_000) });
        if (res.status === 200) body = await res.text();
      } catch {
        await new Promise((s) => setTimeout(s, 2000));
      }
    }
    t.regex(body, /Hello from a signed MilkyWay layer/);
    if (q.pid !== undefined) process.kill(-q.pid, 'SIGINT');
    const end = await q;
    // mway-image itself ends with 0 after a power-off (1 when it had to kill the guest); the
    // shell and npm around it got the terminal's SIGINT too, and npm re-raises it once its
    // child is done, so the command line as a whole ends by that signal.
    t.true(end.exitCode === 0 || end.signal === 'SIGINT', `${end.exitCode} ${end.signal}`);
    t.false(/guest killed/.test(serial), serial.slice(-3000));
    t.regex(serial, /shutdown done \(poweroff\)/);
    t.regex(serial, /mway-image: guest powered off after/);

    const i = await sh(inspect, dir);
    t.is(i.exitCode, 0, i.all);
    t.regex(i.all, /CoreOS milkyway_1\.0\.0: root hash [0-9a-f]{64}/);
    t.regex(i.all, /Layer web 1\.0\.0 .* signed by user/);
    t.notRegex(i.all, /not as the layout has it/);
    const v = await sh(verify, dir);
    t.is(v.exitCode, 0, v.all);
    t.regex(v.all, /verified/);

    // The page's failure example: one flipped byte in data block 100 of CoreOS A.
    const disk = join(dir, 'out', 'default', 'disk.img');
    const a = (await readGpt(disk)).partitions.find((p) => p.name === 'milkyway_1.0.0');
    if (a === undefined) return t.fail('no CoreOS A');
    const fh = await open(disk, 'r+');
    try {
      const byte = Buffer.alloc(1);
      const at = part.offset(a) + 100 * 4096 + 7;
      await fh.read(byte, 0, 1, at);
      byte[0] = (byte[0] as number) ^ 1;
      await fh.write(byte, 0, 1, at);
    } finally {
      await fh.close();
    }
    const bad = await sh(verify, dir);
    t.is(bad.exitCode, 1, bad.all);
    t.regex(bad.all, await failureExample());

    const [copy, validate, mine, again, cmp] = own as [string, string, string, string, string];
    t.is((await sh(copy, dir)).exitCode, 0);
    const val = await sh(validate, dir);
    t.is(val.exitCode, 0, val.all);
    for (const c of [mine, again]) {
      const r = await sh(c, dir);
      t.is(r.exitCode, 0, r.all);
    }
    const same = await sh(cmp, dir);
    t.is(same.exitCode, 0, same.all);
    t.is(same.stdout, '');
  },
);
