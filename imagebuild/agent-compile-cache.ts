// Fills the agent's compile cache (agent/core/compile-cache.ts) inside a CoreOS tree at build
// time, the only time it can be written: the root is read-only and verity-checked at boot.
// Node 24 (src/compile_cache.cc) keeps one file per module in DIR/<node version>-<arch>-
// <V8 CachedDataVersionTag, which hashes the V8 flags>-<uid>/, named crc32(type byte ‖
// file URL) in hex. So the cache is produced by the tree's own node, with the tree as `/`
// (the paths the guest sees), the agent's flags and uid 0, in bwrap.
//
// Only the TypeScript entries (the stripped source, type 2) are kept: they are a pure
// function of the source, so the disk stays byte-reproducible, and they are what spares a
// boot Node's WebAssembly type stripper. The V8 code cache entries (types 0 and 1) are
// dropped because their bytes differ between two identical runs (measured: 645 of 779
// files; V8 serializes string hashes under a per-process random seed, and fixing the seed
// with --hash-seed changes the flag hash, so the guest would reject them).
import { readdir, readFile, mkdir, rm } from 'node:fs/promises';
import { join, posix, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { crc32 } from 'node:zlib';
import { run } from '../common/index.ts';
import { AGENT_EXEC_ARGV, agentEnv, COMPILE_CACHE_SUBDIR } from '../agent/index.ts';
import { COREOS_PATHS } from './coreos-paths.ts';
import { ImageError } from './image-error.ts';

/** Where the agent looks for its cache on CoreOS (COMPILE_CACHE_DIR beside its code). */
export const COREOS_COMPILE_CACHE = posix.join(COREOS_PATHS.lib, COMPILE_CACHE_SUBDIR);

/** Node's CachedCodeType::kStrippedTypeScript (src/compile_cache.h), a uint8_t. */
const STRIPPED_TYPESCRIPT = 2;

/** The cache file name Node 24 gives the stripped source of `guestPath` (src/compile_cache.cc GetCacheKey). */
export function strippedTypeScriptKey(guestPath: string): string {
  const url = pathToFileURL(guestPath).href;
  return crc32(url, crc32(Uint8Array.of(STRIPPED_TYPESCRIPT)))
    .toString(16)
    .padStart(8, '0');
}

/** Every .ts file of the repository's sources in the tree (not node_modules), as guest paths, sorted. */
async function agentSources(root: string): Promise<string[]> {
  const lib = join(root, COREOS_PATHS.lib);
  const out: string[] = [];
  for (const e of await readdir(lib, { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || !e.name.endsWith('.ts') || e.name.endsWith('.d.ts')) continue;
    const rel = relative(lib, join(e.parentPath, e.name));
    if (rel.split('/')[0] === 'node_modules') continue;
    out.push(posix.join(COREOS_PATHS.lib, rel));
  }
  return out.sort();
}

// Imports each module so Node strips and caches it; stripping happens before a module links
// or runs, so a module whose evaluation throws here (no /proc mounts, no config) is cached
// all the same. The CLI entries run nothing on import (they check import.meta.main).
const WARM = `
const { flushCompileCache } = await import('node:module');
for (const f of JSON.parse(process.env.MWAY_WARM_FILES)) { try { await import(f); } catch {} }
flushCompileCache();
process.exit(0);
`;

export interface CompileCacheResult {
  /** The version-tagged folder inside COREOS_COMPILE_CACHE. */
  tag: string;
  entries: number;
}

/** Fills `root`'s COREOS_COMPILE_CACHE with the stripped source of every .ts module under COREOS_PATHS.lib. */
export async function fillAgentCompileCache(root: string): Promise<CompileCacheResult> {
  const files = await agentSources(root);
  const cache = join(root, COREOS_COMPILE_CACHE);
  await rm(cache, { recursive: true, force: true });
  await mkdir(cache, { recursive: true });
  const env = agentEnv({ NODE_COMPILE_CACHE: COREOS_COMPILE_CACHE });
  // uid 0 as on CoreOS (the uid is part of Node's folder name); no network, the tree read-only
  // but for the cache folder.
  const args = ['--unshare-user', '--uid', '0', '--gid', '0', '--unshare-net', '--unshare-pid'];
  args.push('--die-with-parent', '--ro-bind', root, '/', '--bind', cache, COREOS_COMPILE_CACHE);
  args.push('--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp', '--clearenv');
  for (const [k, v] of Object.entries({
    ...env,
    PATH: '/usr/bin:/bin',
    MWAY_WARM_FILES: JSON.stringify(files),
  }))
    args.push('--setenv', k, v);
  args.push('--', COREOS_PATHS.node, ...AGENT_EXEC_ARGV, '--input-type=module', '--eval', WARM);
  await run('bwrap', args, { timeout: 300_000, extendEnv: false });

  const tags = await readdir(cache);
  const tag = tags[0];
  if (tags.length !== 1 || tag === undefined)
    throw new ImageError(
      'E_COMPILE_CACHE',
      `Cannot fill the agent's compile cache: node made ${tags.length} version folders, expected 1`,
      { path: cache },
    );
  const keep = new Map(files.map((f) => [strippedTypeScriptKey(f), f]));
  const dir = join(cache, tag);
  for (const name of await readdir(dir)) if (!keep.has(name)) await rm(join(dir, name));
  for (const [key, f] of keep) {
    // A missing entry means Node names or keys its cache differently from src/compile_cache.cc
    // as read for Node 24: better a failed build than a CoreOS that silently boots cold.
    const bytes = await readFile(join(dir, key)).catch(() => undefined);
    if (bytes === undefined)
      throw new ImageError('E_COMPILE_CACHE', `Cannot fill the agent's compile cache: no entry for ${f}`, {
        path: f,
      });
  }
  return { tag, entries: keep.size };
}
