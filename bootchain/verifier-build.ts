// Builds `mway-stage1`, the static C verifier stage 1 runs (bootchain/verifier/), from source
// with the setup's toolchain (Debian gcc + libc6-dev: scripts/setup.sh). The ML-DSA code is
// PQClean's `ml-dsa-{44,65,87}/clean` and its fips202/sha2, as the npm package `pqclean`
// ships them (its native addon is never built: package.json's allowScripts refuses it). The
// binary is cached under .cache/build/mway-stage1/<sha256 of every input>/ — sources, flags,
// the compiler's version and the boot partition type — written to a temporary name and
// renamed, so concurrent builds and worktrees sharing .cache never see half a file.
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { requireTool, run } from '../common/index.ts';
import { BootchainError } from './bootchain-error.ts';
import { BOOT_PARTITION_TYPE } from './boot-partition.ts';

const HERE = import.meta.dirname;
const ROOT = resolve(HERE, '..');
export const DEFAULT_BUILD_CACHE = join(HERE, '..', '.cache', 'build');
const PQCLEAN = resolve(HERE, '..', 'node_modules', 'pqclean', 'deps', 'PQClean');
const OURS = ['mway-stage1.c', 'stage2.c', 'gpt.c', 'slot.c', 'crc32.c', 'randombytes.c', 'stage1.h'];
const MLDSA = ['ntt', 'packing', 'poly', 'polyvec', 'reduce', 'rounding', 'sign', 'symmetric-shake'];
const LEVELS = ['44', '65', '87'];
const CFLAGS = [
  '-std=c99',
  '-Os',
  '-Wall',
  '-Wextra',
  '-Werror',
  '-fno-common',
  '-ffunction-sections',
  '-fdata-sections',
];
const LDFLAGS = ['-static', '-Wl,--gc-sections', '-s'];

/** The 16 bytes GPT stores for a GUID (first three fields little-endian), as a C initializer. */
export function guidInitializer(guid: string): string {
  const h = guid.replaceAll('-', '');
  const le = (s: string) => (s.match(/../g) ?? []).reverse();
  const bytes = [
    ...le(h.slice(0, 8)),
    ...le(h.slice(8, 12)),
    ...le(h.slice(12, 16)),
    ...(h.slice(16).match(/../g) ?? []),
  ];
  return bytes.map((b) => `0x${b}`).join(',');
}

async function inputs(): Promise<{ path: string; bytes: Buffer }[]> {
  const files = [
    ...OURS.map((f) => join(HERE, 'verifier', f)),
    ...['fips202.c', 'fips202.h', 'sha2.c', 'sha2.h', 'randombytes.h'].map((f) => join(PQCLEAN, 'common', f)),
    ...LEVELS.flatMap((l) => {
      const dir = join(PQCLEAN, 'crypto_sign', `ml-dsa-${l}`, 'clean');
      return [
        ...MLDSA.map((m) => join(dir, `${m}.c`)),
        ...[
          'api',
          'ntt',
          'packing',
          'params',
          'poly',
          'polyvec',
          'reduce',
          'rounding',
          'sign',
          'symmetric',
        ].map((m) => join(dir, `${m}.h`)),
      ];
    }),
  ];
  const out = [];
  for (const path of files) {
    try {
      out.push({ path, bytes: await readFile(path) });
    } catch (e) {
      throw new BootchainError(
        'E_VERIFIER_SOURCES',
        `Cannot build mway-stage1: ${path} is missing (npm ci installs the pqclean package)`,
        { cause: e, path },
      );
    }
  }
  return out;
}

const building = new Map<string, Promise<string>>();

/** Path of the built `mway-stage1` (building it when the cache lacks this exact input set). */
export function buildVerifier(o: { cacheDir?: string } = {}): Promise<string> {
  const key = o.cacheDir ?? DEFAULT_BUILD_CACHE;
  let p = building.get(key);
  if (p === undefined) {
    p = build(key);
    building.set(key, p);
    p.catch(() => building.delete(key));
  }
  return p;
}

async function build(cacheDir: string): Promise<string> {
  const gcc = await requireTool('gcc');
  const version = (await run(gcc, ['--version'], { timeout: 30_000 })).stdout.split('\n')[0] ?? '';
  const define = `-DMWAY_BOOT_TYPE=${guidInitializer(BOOT_PARTITION_TYPE)}`;
  const h = createHash('sha256');
  for (const f of await inputs()) h.update(`${relative(ROOT, f.path)}\0`).update(f.bytes);
  h.update([version, define, ...CFLAGS, ...LDFLAGS].join('\0'));
  const key = h.digest('hex').slice(0, 32);
  const dir = join(cacheDir, 'mway-stage1', key);
  const out = join(dir, 'mway-stage1');
  if (
    await stat(out).then(
      (s) => s.isFile(),
      () => false,
    )
  )
    return out;

  const work = `${dir}.tmp-${randomUUID()}`;
  await mkdir(work, { recursive: true });
  try {
    const objects: string[] = [];
    const cc = async (src: string, obj: string, includes: string[]) => {
      await run(gcc, [...CFLAGS, ...includes.map((i) => `-I${i}`), define, '-c', src, '-o', obj], {
        timeout: 300_000,
      }).catch((e) => {
        throw new BootchainError('E_VERIFIER_BUILD', `Cannot compile ${src}: ${(e as Error).message}`, {
          cause: e,
        });
      });
      objects.push(obj);
    };
    const common = join(PQCLEAN, 'common');
    for (const l of LEVELS) {
      const dir = join(PQCLEAN, 'crypto_sign', `ml-dsa-${l}`, 'clean');
      for (const m of MLDSA) await cc(join(dir, `${m}.c`), join(work, `mldsa${l}-${m}.o`), [dir, common]);
    }
    await cc(join(common, 'fips202.c'), join(work, 'fips202.o'), [common]);
    await cc(join(common, 'sha2.c'), join(work, 'sha2.o'), [common]);
    for (const f of OURS.filter((x) => x.endsWith('.c')))
      await cc(join(HERE, 'verifier', f), join(work, f.replace(/\.c$/, '.o')), [
        join(HERE, 'verifier'),
        common,
      ]);
    const bin = join(work, 'mway-stage1');
    await run(gcc, [...objects, ...LDFLAGS, '-o', bin], { timeout: 300_000 }).catch((e) => {
      throw new BootchainError('E_VERIFIER_BUILD', `Cannot link mway-stage1: ${(e as Error).message}`, {
        cause: e,
      });
    });
    await writeFile(join(work, 'inputs.sha256'), `${key}\n`);
    if (
      await stat(out).then(
        () => true,
        () => false,
      )
    )
      return out;
    await rename(work, dir).catch(async (e) => {
      // Another build renamed the same key first: its binary is the same.
      if (
        !(await stat(out).then(
          () => true,
          () => false,
        ))
      )
        throw e;
    });
    return out;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
