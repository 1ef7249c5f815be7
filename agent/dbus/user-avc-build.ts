// Builds the USER_AVC helper (user-avc.c) for CoreOS with Debian's gcc, static, like the
// stage-1 verifier (bootchain/verifier-build.ts): the same source and compiler give the same
// bytes, so images stay reproducible.
import { chmod, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { requireTool, run } from '../../common/index.ts';

/** Where CoreOS carries the helper; the agent runs it for each denial (dbus-access.ts). */
export const USER_AVC_HELPER = '/usr/libexec/milkyway/mway-user-avc';

const SOURCE = join(import.meta.dirname, 'user-avc.c');
const CFLAGS = ['-std=gnu11', '-Os', '-Wall', '-Wextra', '-Werror', '-ffunction-sections', '-fdata-sections'];
const LDFLAGS = ['-static', '-Wl,--gc-sections', '-s'];

/** Compiles the helper to `out` (0755). */
export async function buildUserAvcHelper(out: string): Promise<void> {
  const gcc = await requireTool('gcc');
  await mkdir(dirname(out), { recursive: true });
  await run(gcc, [...CFLAGS, SOURCE, ...LDFLAGS, '-o', out], { timeout: 120_000 });
  await chmod(out, 0o755);
}
