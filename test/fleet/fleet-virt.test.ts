// The virt module (issue 20, `mway virt`) as scripts/pack-virt-module.sh packs it: Debian's QEMU
// with its own loader, libraries and TCG module, OVMF. Its actions run here the way the agent
// runs them — argv under bwrap with the module's root at /virt, the arguments on stdin, the
// action in $MWAY_ACTION, no network — and are checked against tools nobody here wrote: the
// accelerator probe against Debian's installed qemu-system-x86_64 running the same probe,
// the image digest against coreutils' sha256sum.
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { newIdentity } from '../../keys/index.ts';
import { makeFleetPki } from '../control/command-fixture.ts';
import { ROOT, tempDir } from '../helpers.ts';

const pkiP = makeFleetPki();
// ~37 s (most of it mway-layer packing 56 MB): the slow group (`npm run test:slow`), not npm test.
const slow = process.env.MWAY_SLOW_TESTS === '1' ? test : test.skip;

/** One action of the packed module, as the agent's sandbox runs it (plus `extra` bwrap options). */
async function action(root: string, data: string, name: string, args: object, extra: string[] = []) {
  const r = await execa(
    'bwrap',
    [
      '--ro-bind',
      '/usr',
      '/usr',
      '--symlink',
      'usr/lib',
      '/lib',
      '--symlink',
      'usr/lib64',
      '/lib64',
      '--symlink',
      'usr/bin',
      '/bin',
      '--ro-bind',
      join(root, 'virt'),
      '/virt',
      '--bind',
      data,
      '/data/secure',
      '--proc',
      '/proc',
      '--dev',
      '/dev',
      ...extra,
      '--tmpfs',
      '/tmp',
      '--unshare-net',
      '--unshare-pid',
      '--clearenv',
      '--setenv',
      'MWAY_ACTION',
      name,
      '/usr/bin/node',
      '/virt/virt.mjs',
    ],
    { input: JSON.stringify(args), reject: false, timeout: 120_000 },
  );
  return { exitCode: r.exitCode, out: JSON.parse(r.stdout) as Record<string, unknown>, stderr: r.stderr };
}

slow(
  'virt module: Debian QEMU packed with its own loader runs TCG; the KVM probe agrees with Debian’s QEMU; digests checked',
  async (t) => {
    const p = await pkiP;
    const dir = await tempDir(t, 'mway-virt-');
    const user = await newIdentity({
      issuerKey: p.root.key,
      issuerCert: p.root.cert,
      role: 'user',
      name: 'user',
      outDir: join(dir, 'user'),
    });
    const root = join(dir, 'root');
    const pack = await execa(
      join(ROOT, 'scripts', 'pack-virt-module.sh'),
      ['--key', user.keyPath, '--cert', user.certPath, '-o', join(dir, 'virt.mwl'), '--keep-root', root],
      { timeout: 600_000, reject: false },
    );
    t.is(pack.exitCode, 0, pack.stderr);
    t.regex(pack.stdout, /pack-virt-module: .*virt\.mwl \(qemu-system-x86 \S+, \d+ libraries\)/);
    const data = join(dir, 'data');
    await mkdir(join(data, 'images'), { recursive: true });

    // Without /dev/kvm bound in: TCG only.
    const bare = await action(root, data, 'host', {});
    t.is(bare.exitCode, 0, bare.stderr);
    t.like(bare.out, { kvm: { present: false, works: false }, tcg: { works: true }, accel: 'tcg' });
    t.regex(String(bare.out.qemu), /^QEMU emulator version \d+\.\d+/);

    // With the host's /dev/kvm: whatever Debian's own QEMU does with the same probe here.
    if (existsSync('/dev/kvm')) {
      const fw = join(dir, 'probe.bin');
      const b = Buffer.alloc(65536);
      Buffer.from([0xb0, 0x01, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd]).copy(b, 0xfff0);
      await writeFile(fw, b);
      const debian = await execa(
        'qemu-system-x86_64',
        ['-accel', 'kvm', '-machine', 'q35', '-cpu', 'host', '-m', '16', '-nodefaults', '-no-user-config']
          .concat(['-vga', 'none', '-display', 'none', '-bios', fw])
          .concat(['-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04']),
        { reject: false, timeout: 10_000 },
      );
      const kvm = await action(root, data, 'host', {}, ['--dev-bind', '/dev/kvm', '/dev/kvm']);
      t.is(kvm.exitCode, 0, kvm.stderr);
      t.like(kvm.out, { kvm: { present: true, works: debian.exitCode === 3 } });
      t.is(kvm.out.accel, debian.exitCode === 3 ? 'kvm' : 'tcg');
      t.log(`KVM here: ${JSON.stringify(kvm.out.kvm)}`);
    }

    // The image digest: the packed action against sha256sum, a wrong one refused with its code.
    const image = join(data, 'images', 'disk.img');
    await writeFile(image, createHash('sha512').update('virt').digest().toString('hex').repeat(40_000));
    const sum = (await execa('sha256sum', [image])).stdout.split(' ')[0] ?? '';
    const ok = await action(root, data, 'digest', { path: 'images/disk.img', sha256: sum });
    t.is(ok.exitCode, 0, ok.stderr);
    t.deepEqual(ok.out, { path: 'images/disk.img', sha256: sum });
    const wrong = await action(root, data, 'digest', { path: 'images/disk.img', sha256: '0'.repeat(64) });
    t.is(wrong.exitCode, 2);
    t.like(wrong.out, { error: { code: 'E_VIRT_DIGEST' } });
    t.regex(String((wrong.out.error as { message: string }).message), new RegExp(`has SHA-256 ${sum}`));
    const unknown = await action(root, data, 'create', {});
    t.like(unknown.out, { error: { code: 'E_VIRT_ACTION' } });
  },
);
