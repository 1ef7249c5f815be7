// Puts a freshly built mway-sandbox-exec (agent/services/sandbox-exec.c) on this process's PATH,
// where an agent or supervisor started by the test finds it (CoreOS has it in /usr/libexec).
// Built once per source text, under node_modules/.cache, with Debian's gcc.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { buildSandboxExecHelper, SANDBOX_EXEC_NAME } from '../../../agent/services/sandbox-exec-build.ts';

const REPO = join(import.meta.dirname, '..', '..', '..');

export async function sandboxExecOnPath(): Promise<string> {
  const source = await readFile(join(REPO, 'agent', 'services', 'sandbox-exec.c'));
  const digest = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const dir = join(REPO, 'node_modules', '.cache', 'milkyway', 'sandbox-exec', digest);
  const file = join(dir, SANDBOX_EXEC_NAME);
  if (!existsSync(file)) await buildSandboxExecHelper(file);
  const path = process.env.PATH ?? '';
  if (!path.split(delimiter).includes(dir)) process.env.PATH = `${dir}${delimiter}${path}`;
  return file;
}
