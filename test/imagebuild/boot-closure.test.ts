// Module and shared-library closures, cross-checked against modprobe --show-depends
// (kmod) and ldd (glibc), and the kernel package cache. No QEMU here.
import test from 'ava';
import { chmod, copyFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../common/exec.ts';
import { binaryClosure, readElfDeps } from '../../imagebuild/binary-closure.ts';
import { fetchKernel, resolveKernelPackage } from '../../imagebuild/kernel-package.ts';
import { moduleClosure, readModuleDeps } from '../../imagebuild/module-closure.ts';
import { tempDir } from '../helpers.ts';
import { testKernel } from './boot-fixtures.ts';

test('moduleClosure() gives the modules modprobe would load, each after its modules.dep dependencies', async (t) => {
  const k = await testKernel();
  const baseDir = k.modulesDir.slice(0, k.modulesDir.indexOf('/lib/modules/'));
  for (const name of ['dm-verity', 'virtio_blk', 'erofs', 'vfat']) {
    const ours = await moduleClosure(k.modulesDir, k.version, [name]);
    const mp = await run('modprobe', ['-d', baseDir, '-S', k.version, '--show-depends', name], {
      timeout: 30_000,
    });
    const theirs = mp.stdout
      .split('\n')
      .filter((l) => l.startsWith('insmod '))
      .map((l) => l.slice(7).trim().replace('//', '/'));
    // modprobe adds soft dependencies (crc32c for libcrc32c); modules.dep's hard ones must all be there.
    for (const p of ours) t.true(theirs.includes(p), `${name}: ${p}`);
    t.is(ours.at(-1)?.split('/').at(-1)?.replace('-', '_'), `${name.replace('-', '_')}.ko`);
  }
  const db = await readModuleDeps(k.modulesDir);
  const all = await moduleClosure(k.modulesDir, k.version, [
    'ext4',
    'dm-verity',
    'virtio_pci',
    'overlay',
    'ext4',
  ]);
  const pos = new Map(all.map((p, i) => [p.slice(k.modulesDir.length + 1), i]));
  t.is(pos.size, all.length, 'no duplicates');
  for (const [rel, i] of pos) {
    const name = [...db.paths].find(([, p]) => p === rel)?.[0] ?? '';
    for (const dep of db.deps.get(name) ?? [])
      t.true((pos.get(db.paths.get(dep) ?? '') ?? 1e9) < i, `${dep} before ${name}`);
  }
});

test('moduleClosure() names an unknown module and skips built-in ones', async (t) => {
  const k = await testKernel();
  const e = await t.throwsAsync(moduleClosure(k.modulesDir, k.version, ['no_such_module_xyz']));
  t.is((e as { code?: string }).code, 'E_MODULE_NOT_FOUND');
  t.regex(e?.message ?? '', /no_such_module_xyz/);
  const builtin = [...(await readModuleDeps(k.modulesDir)).builtin][0] ?? '';
  t.deepEqual(await moduleClosure(k.modulesDir, k.version, [builtin]), []);
});

test('binaryClosure() finds what ldd finds for veritysetup, plus the interpreter, without running it', async (t) => {
  const files = await binaryClosure(['/usr/sbin/veritysetup']);
  const dests = files.map((f) => f.dest);
  const ldd = await run('ldd', ['/usr/sbin/veritysetup'], { timeout: 30_000 });
  for (const line of ldd.stdout.split('\n')) {
    const m = /=> (\S+)|^\s*(\/\S+)/.exec(line);
    const p = m?.[1] ?? m?.[2];
    if (p === undefined) continue;
    const soname = p.split('/').at(-1) ?? '';
    t.true(
      dests.some((d) => d.endsWith(`/${soname}`)),
      `${soname} from ldd`,
    );
  }
  t.true(dests.includes('/lib64/ld-linux-x86-64.so.2'));
  t.true(dests.includes('/usr/sbin/veritysetup'));
  for (const f of files) t.false(f.src.includes('..'));
});

test('binaryClosure() passes scripts through, resolves under a root, and names a missing library', async (t) => {
  const dir = await tempDir(t);
  const script = join(dir, 'script.sh');
  await writeFile(script, '#!/bin/sh\necho hi\n');
  await chmod(script, 0o755);
  t.is(await readElfDeps(script), undefined);
  t.deepEqual(await binaryClosure([script]), [{ src: script, dest: script }]);
  // A root with the program but none of its libraries: the error names the library and who needs it.
  const root = join(dir, 'root');
  await mkdir(join(root, 'usr/sbin'), { recursive: true });
  await copyFile('/usr/sbin/veritysetup', join(root, 'usr/sbin/veritysetup'));
  const e = await t.throwsAsync(binaryClosure(['/usr/sbin/veritysetup'], { root }));
  t.is((e as { code?: string }).code, 'E_BINARY_NOT_FOUND');
  t.regex(e?.message ?? '', /needed by \/usr\/sbin\/veritysetup/);
});

test('fetchKernel() reuses its cache and rejects a glob as a package name', async (t) => {
  const k = await testKernel();
  const again = await fetchKernel({ deb: k.debPath, cacheDir: join(k.debPath, '../..') });
  t.is(again.modulesDir, k.modulesDir);
  t.regex(k.version, /^\d+\.\d+\.\d+-\d+-amd64$/);
  const e = await t.throwsAsync(resolveKernelPackage('linux-image-*'));
  t.is((e as { code?: string }).code, 'E_KERNEL_BAD_NAME');
  const missing = await t.throwsAsync(
    fetchKernel({ deb: join(k.debPath, '../nope.deb'), cacheDir: join(k.debPath, '../..') }),
  );
  t.is((missing as { code?: string }).code, 'E_KERNEL_NOT_FOUND');
});

test('fetchKernel() from two callers at once into an empty cache leaves one complete tree', async (t) => {
  const k = await testKernel();
  const cacheDir = await tempDir(t);
  const [a, b] = await Promise.all([
    fetchKernel({ deb: k.debPath, cacheDir }),
    fetchKernel({ deb: k.debPath, cacheDir }),
  ]);
  t.is(a.modulesDir, b.modulesDir);
  t.true((await readModuleDeps(a.modulesDir)).paths.has('dm_verity'));
  const left = await readdir(join(cacheDir, 'unpacked'));
  t.is(left.length, 1, left.join(', '));
});
