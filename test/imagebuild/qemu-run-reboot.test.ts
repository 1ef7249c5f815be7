// `mway-image run` lets a guest reboot (a `mway reboot` restarts the VM, it does not end it)
// unless --no-reboot. Checked on the QEMU command line itself: a stand-in qemu-system-x86_64
// first on PATH records its arguments and exits, so no guest boots.
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { cli, tempDir } from '../helpers.ts';

test('mway-image run passes -no-reboot to QEMU only with --no-reboot', async (t) => {
  const dir = await tempDir(t);
  const fake = join(dir, 'qemu-system-x86_64');
  const log = join(dir, 'args');
  await writeFile(fake, `#!/bin/sh\nprintf '%s\\n' "$@" > '${log}'\nexit 0\n`);
  await chmod(fake, 0o755);
  const disk = join(dir, 'disk.img');
  await writeFile(disk, Buffer.alloc(4096));
  const env = { PATH: `${dir}:${process.env.PATH ?? ''}` };
  const argsOf = async (...extra: string[]) => {
    const r = await cli('mway-image', ['run', disk, '--json', '--timeout', '30', ...extra], { env });
    t.is(r.exitCode, 0, r.stderr);
    return (await readFile(log, 'utf8')).split('\n');
  };
  const plain = await argsOf();
  t.true(plain.includes('-accel'), 'the stand-in QEMU was the one run');
  t.false(plain.includes('-no-reboot'), 'by default a reboot restarts the guest');
  t.true((await argsOf('--no-reboot')).includes('-no-reboot'));
  // The watchdog the agent feeds is there by default, as on a server; --no-watchdog leaves it out.
  const dev = plain.indexOf('i6300esb');
  t.true(dev > 0 && plain[dev - 1] === '-device', plain.join(' '));
  t.true(plain.includes('watchdog=reset'));
  t.false((await argsOf('--no-watchdog')).includes('i6300esb'));
});

test('mway-image run --seed attaches the seed read-only as a second virtio disk; a missing seed is E_QEMU_NO_DISK', async (t) => {
  const dir = await tempDir(t);
  const fake = join(dir, 'qemu-system-x86_64');
  const log = join(dir, 'args');
  await writeFile(fake, `#!/bin/sh\nprintf '%s\\n' "$@" > '${log}'\nexit 0\n`);
  await chmod(fake, 0o755);
  const disk = join(dir, 'disk.img');
  const seed = join(dir, 'seed.iso');
  await writeFile(disk, Buffer.alloc(4096));
  await writeFile(seed, Buffer.alloc(4096));
  const env = { PATH: `${dir}:${process.env.PATH ?? ''}` };
  const r = await cli('mway-image', ['run', disk, '--seed', seed, '--json', '--timeout', '30'], { env });
  t.is(r.exitCode, 0, r.stderr);
  const args = (await readFile(log, 'utf8')).split('\n');
  const drives = args.filter((a, i) => args[i - 1] === '-drive' && !a.startsWith('if=pflash'));
  t.deepEqual(drives, [
    `if=none,id=disk0,format=raw,file=${disk}`,
    `if=virtio,format=raw,readonly=on,file=${seed}`,
  ]);
  // The disk is a virtio disk the firmware boots first (vda; the seed, an if=virtio drive, is
  // made after every -device, so it is vdb).
  t.true(args.includes('virtio-blk-pci,drive=disk0,bootindex=0'), args.join(' '));
  const missing = await cli('mway-image', ['run', disk, '--seed', join(dir, 'nope.iso')], { env });
  t.is(missing.exitCode, 1);
  t.regex(missing.stderr, /E_QEMU_NO_DISK: Cannot attach the seed .*nope\.iso: no such file/);
});
