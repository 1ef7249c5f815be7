// QEMU TEST (SLOW: TCG, one QEMU run of several boots, ~20–40 min on 2 shared cores). The A/B
// update end to end, running doc/how-to-update.md's commands as written: a guest booted from
// CoreOS 1.0 (slot a) through the boot chain (stage 1 chooses the slot; Secure Boot off, as the
// user's keys are not enrolled in this VM's firmware), connected to a broker on the host
// loopback, gets the 2.0 bundle by `mway update --group web`, writes slot b — CoreOS and its
// stage 2 on boot-b — reboots into it as a trial, passes
// its health gate and marks b good (rollback floor 2); `mway update status` and `mway status`
// say so. Then a bad 3.0 — its agent arms the i6300esb watchdog and hangs for good 3 s later,
// long before its health gate — is written into slot a, its one try is spent, the watchdog
// resets the guest and the next boot is 2.0 again without anyone's help; the status names the
// rollback and the watchdog. A replay of the 2.0 bundle is refused. One QEMU process, the
// disk's writes kept across its reboots (snapshot: the image file itself is left as built).
// Passed end to end on 2026-12-03 in 29.4 min under a load of 15–22 on the shared 2 cores: the
// three builds ~4 min, 2.0 sent as 104 pieces, written and verified in 684 s and marked good
// 873 s after `mway update`; the replay refused on its first piece; 3.0 rolled back one boot
// later (then by a panic: its /sbin/init exited). With the hang and the watchdog: passed on
// 2026-12-04 in 14.3 min under a load of 14–16 (2.0 written and verified in 112 s, marked good
// 203 s after `mway update`; stage 1 ran 39 s after 3.0's agent hung: i6300esb's 30 s and the
// firmware — about 25 s more than the panic took).

import { chmod, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { buildImage } from '../../imagebuild/build-image.ts';
import { COREOS_PATHS } from '../../imagebuild/coreos-paths.ts';
import { initScript } from '../../imagebuild/coreos-tree.ts';
import { loadImageKeys } from '../../imagebuild/dev-keys.ts';
import { loadImageSpec } from '../../imagebuild/image-spec.ts';
import { newIdentity, readCertificates, readPrivateKey } from '../../keys/index.ts';
import { bootGuest, startBroker } from '../fleet/_qemu-guest.ts';
import { cli, freePort, jsonOut, ROOT, tempDir } from '../helpers.ts';

const RUN_MS = 75 * 60_000;
/** The longest wait for one console line (a boot, or a boot and a health gate, under TCG). */
const WAIT_MS = 20 * 60_000;

/** The ```sh blocks of doc/how-to-update.md, each a list of command lines. */
async function howToBlocks(): Promise<string[][]> {
  const text = await readFile(join(ROOT, 'doc/how-to-update.md'), 'utf8');
  return [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) =>
    (m[1] ?? '').split('\n').filter((l) => l.trim() !== ''),
  );
}

test.serial(
  'QEMU: A/B update 1.0 → 2.0 marked good after the gate; a bad 3.0 rolls back by itself (doc/how-to-update.md as written)',
  async (t) => {
    t.timeout(RUN_MS + 120_000);
    const dir = await tempDir(t, 'mway-ab-qemu-');
    const keysDir = join(dir, 'keys');
    await loadImageKeys(keysDir, { generate: true });
    const [keys0, make2, send2, status2, bad3] = await howToBlocks();
    if (
      keys0 === undefined ||
      make2 === undefined ||
      send2 === undefined ||
      status2 === undefined ||
      bad3 === undefined
    )
      return t.fail('doc/how-to-update.md lost a command block');
    const env = { MWAY_CONFIG_DIR: join(dir, 'mway') };
    const bin = { mway: 'mway', 'mway-image': 'mway-image' } as const;
    /** One line of the how-to, run in `dir` as a user would type it. */
    const sh = async (line: string) => {
      const [tool, ...args] = line.trim().split(/\s+/);
      if (tool !== 'mway' && tool !== 'mway-image') throw new Error(`how-to line runs ${tool}`);
      const r = await cli(bin[tool], args, { env, cwd: dir, timeout: 40 * 60_000 });
      t.log(`$ ${line}\n${r.stdout}${r.stderr}`);
      return r;
    };
    // The keys folder as a user's own: the ML-DSA PKI, then the Secure Boot keys the how-to makes.
    for (const line of keys0) t.is((await sh(line)).exitCode, 0, line);
    const rootKey = await readPrivateKey(join(keysDir, 'user-root.key'));
    const [rootCert] = await readCertificates(join(keysDir, 'user-root.crt'));
    if (rootCert === undefined) return t.fail('no user root');
    const under = { issuerKey: rootKey, issuerCert: rootCert };
    const peer = await newIdentity({
      ...under,
      role: 'peer',
      name: 'peer',
      peerId: 'qemu1',
      outDir: join(dir, 'identity'),
    });
    if (peer.kemKeyPath === undefined) return t.fail('peer identity without an ML-KEM key');
    const broker = await newIdentity({
      ...under,
      role: 'broker',
      name: 'broker',
      dnsNames: ['localhost'],
      outDir: join(dir, 'broker'),
    });
    const admin = await newIdentity({
      ...under,
      role: 'operator',
      name: 'admin',
      groups: ['*'],
      actions: ['*'],
      outDir: join(dir, 'operator'),
    });
    const port = await freePort();
    // CoreOS 3.0's agent, the real one, hangs for good (its event loop blocked) 3 s after it
    // opened the watchdog: a preload its /sbin/init adds. Only the watchdog can end that boot.
    const hang = join(dir, 'hang.mjs');
    await writeFile(
      hang,
      [
        "import fs from 'node:fs';",
        "import { syncBuiltinESMExports } from 'node:module';",
        'const open = fs.openSync;',
        'fs.openSync = function (path, ...rest) {',
        '  const fd = open.call(this, path, ...rest);',
        "  if (String(path) === '/dev/watchdog')",
        '    setTimeout(() => {',
        "      fs.writeSync(2, 'bad CoreOS 3.0: the agent hangs now\\n');",
        '      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);',
        '    }, 3000);',
        '  return fd;',
        '};',
        'syncBuiltinESMExports();',
        '',
      ].join('\n'),
    );
    const HANG_AT = '/etc/milkyway/hang.mjs';
    const badInit = join(dir, 'bad-init');

    const build = async (
      version: string,
      rollbackIndex: number,
      extra: Record<string, unknown> = {},
      before?: (spec: string) => Promise<void>,
    ) => {
      const spec = join(dir, `image-${version}.json`);
      await writeFile(
        spec,
        JSON.stringify({
          name: 'milkyway',
          version,
          kernel: { package: 'linux-image-amd64' },
          coreos: {
            network: { interface: 'eth0', address: '10.0.2.15/24', gateway: '10.0.2.2' },
            ...extra,
          },
          bootchain: { rollbackIndex },
          layers: [join(ROOT, 'examples/default/layers/web')],
          keys: { dir: keysDir },
          secureConfig: { hostname: 'qemu1', groups: {}, allowLayers: ['web'] },
          agent: {
            control: {
              broker: `10.0.2.2:${port}`,
              fleet: 'qemu',
              key: '/identity/peer.key',
              cert: '/identity/peer.crt',
              kemKey: '/identity/peer.kem.key',
              anchors: ['/certs'],
              crls: ['/certs'],
              maxBackoffMs: 3000,
              statusIntervalMs: 15_000,
            },
            update: { readyWithinMs: 180_000, graceMs: 5000 },
          },
          // The peer spools the ~180 MB bundle on /data (doc/how-to-update.md, "Send it").
          partitions: { esp: 64, layers: 64, data: 512 },
          peerIdentity: join(dir, 'identity'),
        }),
      );
      await before?.(spec);
      const t0 = Date.now();
      const r = await buildImage({
        spec: await loadImageSpec(spec),
        outDir: join(dir, `out-${version}`),
        sourceDateEpoch: 1_700_000_000,
      });
      t.log(`image ${version} built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      return r.disk;
    };
    const v1 = await build('1.0', 1);
    await symlink(await build('2.0', 2), join(dir, 'v2.img'));
    await symlink(
      await build(
        '3.0',
        3,
        {
          files: [
            { src: badInit, dest: COREOS_PATHS.init },
            { src: hang, dest: HANG_AT },
          ],
        },
        // The init 3.0 would have, with the preload added to the agent's Node.
        async (spec) => {
          const init = initScript(await loadImageSpec(spec));
          const withHang = init.replace(
            `exec ${COREOS_PATHS.node} `,
            `exec ${COREOS_PATHS.node} --import=${HANG_AT} `,
          );
          if (withHang === init) throw new Error('the init script no longer execs the agent as expected');
          await writeFile(badInit, withHang, { mode: 0o755 });
          await chmod(badInit, 0o755);
        },
      ),
      join(dir, 'v3.img'),
    );

    const brokerConfig = join(dir, 'broker.json');
    await writeFile(
      brokerConfig,
      JSON.stringify({
        listen: `127.0.0.1:${port}`,
        key: broker.keyPath,
        certificate: broker.certPath,
        anchors: [join(keysDir, 'user-root.crt')],
        database: join(dir, 'broker.db'),
        mdns: { enabled: false },
      }),
    );
    const srv = await startBroker(t, brokerConfig, RUN_MS);
    const mway = (...args: string[]) => cli('mway', args, { env, cwd: dir, timeout: 240_000 });
    const init = await mway(
      'config',
      'init',
      '--broker',
      `127.0.0.1:${port}`,
      '--fleet',
      'qemu',
      '--anchor',
      join(keysDir, 'user-root.crt'),
      '--key',
      admin.keyPath,
      '--cert',
      admin.certPath,
    );
    t.is(init.exitCode, 0, init.stderr);

    for (const line of make2) t.is((await sh(line)).exitCode, 0, line);

    const b = bootGuest(t, v1, {
      timeoutMs: RUN_MS,
      memoryMiB: 2048,
      log: join(dir, 'console.log'),
      waitMs: WAIT_MS,
      watchdog: true,
    });
    const q = await b.started;
    const console = () => b.lines.slice(-40).join('\n');
    t.truthy(await b.until(/mway-stage1: booting stage 2 from slot a: /), console());
    t.truthy(
      await b.until(/control: connected to broker 10\.0\.2\.2:\d+ as qemu1/),
      `${console()}\n${srv.lines.join('\n')}`,
    );
    t.truthy(await b.until(/milkyway-agent info: boot done:/), console());
    t.true(
      b.lines.some((l) => /watchdog: \/dev\/watchdog armed, fed every 5\.0 s/.test(l)),
      `the agent did not arm the i6300esb watchdog\n${console()}`,
    );
    t.is((await mway('group', 'create', 'web')).exitCode, 0);
    t.is((await mway('group', 'add', 'web', 'qemu1')).exitCode, 0);
    let held = false;
    for (let i = 0; i < 90 && !held; i++) {
      const rows = jsonOut((await mway('status', '--json')).stdout) as Array<{ groups?: string[] }>;
      held = rows[0]?.groups?.includes('web') === true;
      if (!held) await new Promise((r) => setTimeout(r, 1000));
    }
    t.true(held, `membership not reported\n${console()}`);

    // The good update.
    let mark = b.lines.length;
    const t1 = Date.now();
    for (const line of send2) t.is((await sh(line)).exitCode, 0, `${line}\n${console()}`);
    t.log(`2.0 sent, written and verified in ${((Date.now() - t1) / 1000).toFixed(0)} s`);
    t.truthy(await b.until(/shutdown done \(reboot\)/, mark), console());
    t.truthy(await b.until(/mway-stage1: slot b: priority 2, tries 1, successful 0/, mark), console());
    t.truthy(await b.until(/mway-stage1: booting stage 2 from slot b \(trial\): /, mark), console());
    t.truthy(
      await b.until(/CoreOS slot b \(2\.0\) passed its health gate: marked good, rollback floor 2/, mark),
      console(),
    );
    t.truthy(await b.until(/control: connected to broker/, mark), console());
    t.log(`2.0 booted and marked good ${((Date.now() - t1) / 1000).toFixed(0)} s after mway update`);
    const st = await sh(status2[0] as string);
    t.is(st.exitCode, 0, st.stderr);
    t.regex(
      st.stdout,
      /qemu1: running b {2}a 1\.0 \(good, priority 1\) {2}b\* 2\.0 \(good, priority 2\) {2}rollback floor 2 {2}gate passed/,
    );

    // `mway status` shows the slots too, from the peer's signed status.
    let plain = '';
    for (let i = 0; i < 60 && !/slots a 1\.0 \(good\) {2}b\* 2\.0 \(good\)/.test(plain); i++) {
      plain = (await mway('status')).stdout;
      if (!/slots a 1\.0 \(good\) {2}b\* 2\.0 \(good\)/.test(plain))
        await new Promise((r) => setTimeout(r, 1000));
    }
    t.regex(plain, /qemu1 .*\n {2}slots a 1\.0 \(good\) {2}b\* 2\.0 \(good\)/);

    // A replay of 2.0 is refused by the peer.
    const replay = await mway(
      'update',
      '--group',
      'web',
      'milkyway-2.0.mwu',
      '--timeout',
      '1800',
      '--json',
      '--static',
    );
    t.is(replay.exitCode, 1);
    t.regex(replay.stdout, /E_BUNDLE_DOWNGRADE/);

    // The bad 3.0: written into a, its one try spent on a hang the watchdog ends, back on b
    // without help.
    mark = b.lines.length;
    const [make3, send3, status3] = bad3;
    t.is((await sh(make3 as string)).exitCode, 0);
    t.is((await sh(send3 as string)).exitCode, 0, console());
    t.truthy(await b.until(/mway-stage1: booting stage 2 from slot a \(trial\): /, mark), console());
    // 3.0's agent arms the watchdog and then hangs; nothing but the watchdog resets the guest.
    t.truthy(await b.until(/watchdog: \/dev\/watchdog armed/, mark), console());
    t.truthy(await b.until(/bad CoreOS 3\.0: the agent hangs now/, mark), console());
    const hungAt = Date.now();
    t.truthy(await b.until(/mway-stage1: slot a: priority 2, tries 0, successful 0/, mark), console());
    t.log(
      `the watchdog reset the hung guest: stage 1 ran ${((Date.now() - hungAt) / 1000).toFixed(0)} s after the hang`,
    );
    t.false(
      b.lines.slice(mark).some((l) => /Kernel panic/.test(l)),
      'the hang was ended by the watchdog, not a panic',
    );
    t.truthy(await b.until(/mway-stage1: booting stage 2 from slot b: /, mark), console());
    t.truthy(await b.until(/CoreOS update to 3\.0 \(slot a\) was rolled back/, mark), console());
    t.truthy(await b.until(/control: connected to broker/, mark), console());
    const after = await sh(status3 as string);
    // 3.0's slot is bad and boots no more; 2.0 runs, good, with the priority the update gave it.
    t.regex(
      after.stdout,
      /qemu1: running b {2}a 3\.0 \(bad, priority 0\) {2}b\* 2\.0 \(good, priority 1\) {2}rollback floor 2/,
    );
    t.regex(
      after.stdout,
      /last rollback: 3\.0 \(slot a\) at .*: the trial boot of slot a did not reach the health gate \(the watchdog reset the machine: it hung\)/,
    );

    const off = await mway('poweroff', '--peer', 'qemu1', '--timeout', '180', '--json', '--static');
    t.is(off.exitCode, 0, off.stdout + off.stderr);
    t.true((await q.done).poweredOff);
  },
);
