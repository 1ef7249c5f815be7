// A Debian kernel package as the image builder uses it: the .deb downloaded with
// `apt-get download` into a cache, unpacked with `dpkg-deb -x`, and modules.dep made
// with `depmod -b` (Debian generates it in postinst, so the .deb does not carry it).
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { pathExists, run } from '../common/index.ts';
import { ImageError } from './image-error.ts';

export interface KernelPackage {
  /** Kernel release, e.g. `6.1.0-56-amd64` (the directory under lib/modules). */
  version: string;
  /** The bzImage. */
  vmlinuz: string;
  /** `…/lib/modules/VERSION`, with modules.dep. */
  modulesDir: string;
  /** The .deb it came from. */
  debPath: string;
}

export interface FetchKernelOptions {
  /** A Debian package name: `linux-image-6.1.0-56-amd64`, or a metapackage such as `linux-image-amd64`. */
  package?: string;
  /** A local .deb instead of a download. */
  deb?: string;
  /** Where .debs and unpacked trees are kept between runs. */
  cacheDir: string;
}

// Package names as Debian allows them; anything else never reaches apt (no globs: a glob
// in `apt-get download linux-image-*` fetches every ABI, well over a gigabyte).
const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]+$/;

/**
 * Resolves a metapackage (`linux-image-amd64`) to the concrete ABI package it depends on,
 * so the cache is keyed by what is really installed; concrete names pass through.
 */
export async function resolveKernelPackage(name: string): Promise<string> {
  if (!PACKAGE_NAME.test(name)) {
    throw new ImageError(
      'E_KERNEL_BAD_NAME',
      `Cannot use kernel package ${JSON.stringify(name)}: not a Debian package name`,
    );
  }
  if (/^linux-image-\d/.test(name)) return name;
  const r = await run('apt-cache', ['depends', name], { timeout: 60_000, reject: false });
  const dep = /Depends: (linux-image-\d[a-z0-9+.-]*)/.exec(r.stdout)?.[1];
  if (r.exitCode !== 0 || dep === undefined) {
    throw new ImageError(
      'E_KERNEL_NOT_FOUND',
      `Cannot resolve kernel package ${name}: apt-cache depends names no linux-image-<abi> (run apt-get update?)`,
      { details: { stderr: r.stderr.slice(-2000) } },
    );
  }
  return dep;
}

async function downloadDeb(pkg: string, debDir: string): Promise<string> {
  const prefix = `${pkg}_`;
  const cached = (await readdir(debDir)).filter((f) => f.startsWith(prefix) && f.endsWith('.deb')).sort();
  const hit = cached.at(-1);
  if (hit !== undefined) return join(debDir, hit);
  // Download into a private directory and rename, so a killed download leaves no half .deb.
  const tmp = join(debDir, `.dl-${process.pid}-${Date.now()}`);
  await mkdir(tmp, { recursive: true });
  try {
    const r = await run('apt-get', ['download', pkg], { timeout: 600_000, cwd: tmp, reject: false });
    const got = (await readdir(tmp)).find((f) => f.endsWith('.deb'));
    if (r.exitCode !== 0 || got === undefined) {
      throw new ImageError(
        'E_KERNEL_DOWNLOAD',
        `Cannot download ${pkg}: apt-get download failed: ${r.stderr.trim().split('\n').at(-1) ?? ''}`,
        {
          details: { stderr: r.stderr.slice(-2000) },
        },
      );
    }
    await rename(join(tmp, got), join(debDir, got));
    return join(debDir, got);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Unpacks `debPath` once into the cache (keyed by the .deb's name and size) and makes modules.dep. */
async function unpack(debPath: string, cacheDir: string): Promise<KernelPackage> {
  const key = createHash('sha256').update(basename(debPath)).digest('hex').slice(0, 16);
  const root = join(cacheDir, 'unpacked', `${basename(debPath, '.deb')}-${key}`);
  if (!(await pathExists(join(root, '.complete')))) {
    const tmp = `${root}.tmp-${process.pid}-${randomUUID().slice(0, 8)}`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    try {
      await run('dpkg-deb', ['-x', debPath, tmp], { timeout: 300_000 });
      const versions = await readdir(join(tmp, 'lib/modules')).catch(() => [] as string[]);
      const v = versions[0];
      if (versions.length !== 1 || v === undefined) {
        throw new ImageError(
          'E_KERNEL_BAD_PACKAGE',
          `Cannot use ${debPath}: expected one directory under lib/modules, found ${versions.length}`,
          {
            path: debPath,
          },
        );
      }
      await run('depmod', ['-b', tmp, v], { timeout: 120_000 });
      await writeFile(join(tmp, '.complete'), `${v}\n`);
      // Parallel builds (test workers) may unpack the same .deb at once: a complete tree
      // that is already there wins and is never removed under a reader; only a leftover
      // without .complete (a killed run) is replaced.
      if (await pathExists(join(root, '.complete'))) await rm(tmp, { recursive: true, force: true });
      else {
        await rm(root, { recursive: true, force: true });
        try {
          await rename(tmp, root);
        } catch (e) {
          if (!(await pathExists(join(root, '.complete')))) throw e;
          await rm(tmp, { recursive: true, force: true });
        }
      }
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
  }
  const version = (await readdir(join(root, 'lib/modules')))[0];
  if (version === undefined)
    throw new ImageError('E_KERNEL_BAD_PACKAGE', `Cannot use ${debPath}: no lib/modules`, { path: debPath });
  const vmlinuz = join(root, 'boot', `vmlinuz-${version}`);
  if (!(await pathExists(vmlinuz))) {
    throw new ImageError('E_KERNEL_BAD_PACKAGE', `Cannot use ${debPath}: no boot/vmlinuz-${version}`, {
      path: debPath,
    });
  }
  return { version, vmlinuz, modulesDir: join(root, 'lib/modules', version), debPath };
}

/** A kernel from a Debian package name or a .deb path, unpacked in `cacheDir` (reused on the next call). */
export async function fetchKernel(options: FetchKernelOptions): Promise<KernelPackage> {
  const cacheDir = resolve(options.cacheDir);
  const debDir = join(cacheDir, 'debs');
  await mkdir(debDir, { recursive: true });
  let debPath: string;
  if (options.deb !== undefined) {
    debPath = resolve(options.deb);
    if (!(await pathExists(debPath)))
      throw new ImageError('E_KERNEL_NOT_FOUND', `Cannot read kernel package ${debPath}: no such file`, {
        path: debPath,
      });
  } else {
    const pkg = await resolveKernelPackage(options.package ?? 'linux-image-amd64');
    debPath = await downloadDeb(pkg, debDir);
  }
  return unpack(debPath, cacheDir);
}

/** The project's default kernel cache: `.cache/kernel` at the repository root. */
export const DEFAULT_KERNEL_CACHE = join(import.meta.dirname, '..', '.cache', 'kernel');
