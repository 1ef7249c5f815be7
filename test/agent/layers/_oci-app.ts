// Shared steps of the real-application tests (oci-*.test.ts): an image built from Debian's
// packages (test/_debian-image.ts) imported unedited, the agent booted as PID 1 of a PID +
// mount namespace with a network of its own, and the processes found under it by name.
import type { ExecutionContext } from 'ava';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../../common/exec.ts';
import { readCertificates, readPrivateKey } from '../../../keys/index.ts';
import { type ImportOciResult, importOci } from '../../../layers/index.ts';
import { type DebianImage, debianImage } from '../../_debian-image.ts';
import { type AgentRoot, makePki, makeRoot, type RunningAgent, startAgent } from '../_namespace.ts';

/** Every process below `pid` (through /proc/PID/task/TID/children). */
export async function descendants(pid: number): Promise<number[]> {
  const out: number[] = [];
  const queue = [pid];
  for (let p = queue.shift(); p !== undefined; p = queue.shift()) {
    const tasks = await readdir(`/proc/${p}/task`).catch(() => [] as string[]);
    for (const task of tasks) {
      const kids = await readFile(`/proc/${p}/task/${task}/children`, 'utf8').catch(() => '');
      for (const k of kids.trim().split(/\s+/).filter(Boolean)) {
        out.push(Number(k));
        queue.push(Number(k));
      }
    }
  }
  return out;
}

export async function comm(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim();
}

export async function uidOf(pid: number): Promise<number | undefined> {
  const m = /^Uid:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8').catch(() => ''));
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

/** The processes named `name` under the agent. */
export async function processes(agent: RunningAgent, name: string): Promise<number[]> {
  const found: number[] = [];
  for (const p of await descendants(await agent.hostPid())) if ((await comm(p)) === name) found.push(p);
  return found;
}

export interface App {
  root: AgentRoot;
  imported: ImportOciResult;
  /** Boots the agent and waits for `boot done` with no failed service. */
  boot: () => Promise<RunningAgent>;
}

/** Builds (or takes from the cache) the image, imports it unedited into a fresh agent root. */
export async function importApp(
  t: ExecutionContext,
  image: DebianImage,
  name: string,
  version: string,
): Promise<App> {
  const archive = await debianImage(image);
  const pki = await makePki(t);
  const root = await makeRoot(t, pki);
  const imported = await importOci({
    archive,
    key: await readPrivateKey(pki.userKeyPath),
    chain: await readCertificates(pki.userCertPath),
    out: join(root.root, 'layers', `${name}.mwl`),
    name,
    version,
  });
  const boot = async () => {
    const agent = startAgent(t, root, [], { net: true });
    const done = await agent.waitFor(/boot done: [^\n]*/, 300_000);
    t.regex(done, /1 services \(0 failed\)/, agent.output());
    return agent;
  };
  return { root, imported, boot };
}

/** Runs `argv` in the namespaces of `pid` (its mount namespace: the service's own root). */
export function inside(pid: number, namespaces: string[], argv: string[], env?: Record<string, string>) {
  return run('nsenter', ['-t', String(pid), ...namespaces, '--', ...argv], {
    timeout: 60_000,
    reject: false,
    ...(env === undefined ? {} : { env }),
  });
}
