// Builds the probe helper (sandbox-exec.c) for CoreOS with Debian's gcc, static, like the
// USER_AVC helper (agent/dbus/user-avc-build.ts): the same source and compiler give the same
// bytes. Static, because it runs inside a sandbox's root, where the loader and libc are the
// layer's; a dynamic helper would run them before it drops the agent's credentials.
import { chmod, mkdir, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { requireTool, run } from '../../common/index.ts';

/** Where CoreOS carries the helper; the agent runs it for each exec readiness probe. */
export const SANDBOX_EXEC_HELPER = '/usr/libexec/milkyway/mway-sandbox-exec';
/** Its name on PATH, where a development host (a test) puts one it built. */
export const SANDBOX_EXEC_NAME = 'mway-sandbox-exec';

const SOURCE = join(import.meta.dirname, 'sandbox-exec.c');
const CFLAGS = ['-std=gnu11', '-Os', '-Wall', '-Wextra', '-Werror', '-ffunction-sections', '-fdata-sections'];
const LDFLAGS = ['-static', '-Wl,--gc-sections', '-s'];

/** Compiles the helper to `out` (0755), written beside and renamed in. */
export async function buildSandboxExecHelper(out: string): Promise<void> {
  const gcc = await requireTool('gcc');
  await mkdir(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  await run(gcc, [...CFLAGS, SOURCE, ...LDFLAGS, '-o', tmp], { timeout: 120_000 });
  await chmod(tmp, 0o755);
  await rename(tmp, out);
}
