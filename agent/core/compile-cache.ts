// The agent's compile cache (Node's module.enableCompileCache): the TypeScript-stripped
// source and V8 code cache of every module it loads, so a start does not instantiate
// Node's type stripper (~17 MiB RSS, ~100 ms) nor recompile what an earlier start compiled.
// The cache is code: it lives beside the code it caches (node_modules/.cache under the
// repository, or /usr/lib/milkyway on CoreOS), so it is exactly as protected as that code —
// read-only and verity-checked on CoreOS, where only the image build can fill it.
import { enableCompileCache, flushCompileCache, getCompileCacheDir } from 'node:module';
import { join } from 'node:path';

/** The cache's place relative to the repository (or CoreOS's /usr/lib/milkyway). */
export const COMPILE_CACHE_SUBDIR = 'node_modules/.cache/milkyway-agent';

export const COMPILE_CACHE_DIR = join(import.meta.dirname, '..', '..', COMPILE_CACHE_SUBDIR);

/**
 * The environment for the agent's re-exec: NODE_COMPILE_CACHE names the cache unless the
 * caller chose one or disabled it, so the new process uses it from its first module on.
 */
export function withCompileCache(env: NodeJS.ProcessEnv, dir = COMPILE_CACHE_DIR): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  if (out.NODE_COMPILE_CACHE === undefined && out.NODE_DISABLE_COMPILE_CACHE === undefined)
    out.NODE_COMPILE_CACHE = dir;
  return out;
}

/** For a start without the re-exec: caches the modules loaded from now on. */
export function enableAgentCompileCache(dir = COMPILE_CACHE_DIR): void {
  if (getCompileCacheDir() !== undefined || process.env.NODE_DISABLE_COMPILE_CACHE !== undefined) return;
  // An unwritable directory only disables the cache (measured: no error, no hang).
  enableCompileCache(dir);
}

/** Writes what this start compiled now, not at exit: a real PID 1 never exits. */
export function flushAgentCompileCache(): void {
  if (getCompileCacheDir() !== undefined) flushCompileCache();
}
