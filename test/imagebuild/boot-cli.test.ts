// `mway-image run` as a user runs it: bad input fails fast; one QEMU boot (TCG, ~20-40 s)
// serves HTTP through a 127.0.0.1 forward, and Ctrl-C presses the ACPI power button
// (QMP system_powerdown) which the guest sees on evdev and powers off.
import test from 'ava';
import { execa } from 'execa';
import { buildInitramfs } from '../../imagebuild/initramfs.ts';
import { BINS, cli, freePort, tempDir } from '../helpers.ts';
import { EPOCH, testKernel, ukiDisk } from './boot-fixtures.ts';

const GUEST_INIT = `#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
while read -r ko; do insmod "$ko" 2>/dev/null; done < /etc/modules.load
mkdir -p /www; echo hello-from-guest > /www/index.html
i=0; until [ -e /sys/class/net/eth0 ] || [ $i -ge 100 ]; do usleep 100000; i=$((i + 1)); done
ifconfig lo up; ifconfig eth0 10.0.2.15 netmask 255.255.255.0 up; route add default gw 10.0.2.2
httpd -p 8080 -h /www
for d in /sys/class/input/input*; do
  [ "$(cat $d/name)" = "Power Button" ] || continue
  for e in $d/event*; do (dd if=/dev/input/\${e##*/} bs=24 count=1 >/dev/null 2>&1; echo BOOT-CLI-POWER-BUTTON; poweroff -f) & done
done
echo BOOT-CLI-READY
while :; do sleep 60; done
`;

test('mway-image run rejects a missing disk and a bad --forward', async (t) => {
  const dir = await tempDir(t);
  const r = await cli('mway-image', ['run', `${dir}/nope.img`]);
  t.not(r.exitCode, 0);
  t.regex(r.stderr, /E_QEMU_NO_DISK/);
  const f = await cli('mway-image', ['run', '/dev/null', '--forward', '80']);
  t.not(f.exitCode, 0);
  t.regex(f.stderr, /E_QEMU_BAD_FORWARD/);
  const tmo = await cli('mway-image', ['run', '/dev/null', '--timeout=-1']);
  t.regex(tmo.stderr, /E_QEMU_BAD_TIMEOUT/);
  // Without `=`, a value starting with a dash is taken for a flag: a usage error saying so.
  const dash = await cli('mway-image', ['run', '/dev/null', '--timeout', '-1']);
  t.is(dash.exitCode, 2);
  t.regex(dash.stderr, /E_USAGE: --timeout needs a value .*--timeout=-/);
});

test('QEMU: mway-image run forwards 127.0.0.1 to the guest and Ctrl-C powers the guest off via ACPI', async (t) => {
  t.timeout(480_000);
  const dir = await tempDir(t);
  const kernel = await testKernel();
  const initrd = await buildInitramfs({ kernel, sourceDateEpoch: EPOCH, init: GUEST_INIT });
  const disk = await ukiDisk(dir, { initrd, cmdline: 'console=ttyS0,115200 panic=-1' });
  const port = await freePort();
  const child = execa(
    process.execPath,
    [BINS['mway-image'], 'run', disk, '--forward', `${port}:8080`, '--timeout', '420'],
    {
      reject: false,
      timeout: 450_000,
      buffer: true,
      // its own process group, so the SIGINT below reaches the whole group like a terminal's Ctrl-C
      detached: true,
    },
  );
  t.teardown(() => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  });
  let out = '';
  const ready = new Promise<void>((resolve) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      if (out.includes('BOOT-CLI-READY')) resolve();
    });
  });
  await Promise.race([ready, child]);
  t.true(out.includes('BOOT-CLI-READY'), out.slice(-3000));
  let body = '';
  for (let i = 0; i < 30 && body === ''; i++) {
    try {
      body = await (
        await fetch(`http://127.0.0.1:${port}/index.html`, { signal: AbortSignal.timeout(10_000) })
      ).text();
    } catch {
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  t.is(body.trim(), 'hello-from-guest');
  // Ctrl-C on a terminal signals the whole foreground group: QEMU must not see it.
  if (child.pid !== undefined) process.kill(-child.pid, 'SIGINT');
  const r = await child;
  t.is(r.exitCode, 0, String(r.stderr));
  t.regex(out, /BOOT-CLI-POWER-BUTTON/);
  t.regex(out, /guest powered off after/);
});
