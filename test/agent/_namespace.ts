// Runs the agent the way the issue describes namespace mode:
// `unshare --pid --fork --mount --mount-proc milkyway-agent --root DIR --config FILE`,
// with a PKI, trust anchors and a signed secure config made in the test.
import type { ExecutionContext } from 'ava';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { newIdentity, readCertificates, readPrivateKey, serialize, signEnvelope } from '../../keys/index.ts';
import { BINS, tempDir } from '../helpers.ts';

export interface Pki {
  dir: string;
  rootCert: string;
  userKeyPath: string;
  userCertPath: string;
}

export async function makePki(t: ExecutionContext): Promise<Pki> {
  const dir = await tempDir(t, 'mway-agent-pki-');
  const root = await newIdentity({ role: 'user-root', name: 'root', outDir: dir });
  const rootKey = await readPrivateKey(root.keyPath);
  const user = await newIdentity({
    role: 'user',
    name: 'user',
    outDir: dir,
    issuerKey: rootKey,
    issuerCert: root.certificate,
  });
  return { dir, rootCert: root.certPath, userKeyPath: user.keyPath, userCertPath: user.certPath };
}

export async function signSecureConfig(pki: Pki, payload: unknown): Promise<Uint8Array> {
  const key = await readPrivateKey(pki.userKeyPath);
  const chain = await readCertificates(pki.userCertPath);
  return serialize(signEnvelope({ type: 'config', payload, key, chain }));
}

export interface AgentRoot {
  root: string;
  configPath: string;
}

/** A root directory with certs/, config/secure.json, layers/, data/ and the agent config. */
export async function makeRoot(
  t: ExecutionContext,
  pki: Pki,
  options: { secure?: unknown; config?: Record<string, unknown> } = {},
): Promise<AgentRoot> {
  const root = await tempDir(t, 'mway-agent-root-');
  await mkdir(join(root, 'certs'));
  await writeFile(join(root, 'certs', 'user-root.crt'), await readFile(pki.rootCert));
  await mkdir(join(root, 'config'));
  await writeFile(
    join(root, 'config', 'secure.json'),
    await signSecureConfig(pki, options.secure ?? { v: 1, groups: {} }),
  );
  await mkdir(join(root, 'layers'));
  await mkdir(join(root, 'data'));
  await mkdir(join(root, 'base'));
  const configPath = join(root, 'agent.json');
  const cgroupRoot = `/sys/fs/cgroup/unified/mway-agent-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  // Registered before the agent starts, so it runs after the agent is gone (teardowns run last-in first-out).
  t.teardown(async () => {
    const { rmdir } = await import('node:fs/promises');
    await rmdir(cgroupRoot).catch(() => {});
  });
  await writeFile(
    configPath,
    JSON.stringify({
      stateDir: '/run',
      trustAnchorsDir: '/certs',
      secureConfig: '/config/secure.json',
      layersDir: '/layers',
      dataDir: '/data',
      baseDir: '/base',
      allowUserspaceVerity: true,
      cgroupRoot,
      stopTimeoutMs: 3000,
      ...options.config,
    }),
  );
  return { root, configPath };
}

export interface RunningAgent {
  proc: ChildProcess;
  /** The agent's pid as the host sees it (PID 1 inside its namespace). */
  hostPid: () => Promise<number>;
  output: () => string;
  waitFor: (re: RegExp, ms?: number) => Promise<string>;
  exit: Promise<number | null>;
  kill: (signal: NodeJS.Signals | number) => Promise<void>;
}

/**
 * Starts the agent as PID 1 of a new PID + mount namespace. The host's `/` is bound at
 * `<root>/base` inside the namespace so app overlays have a base with a shell and tools.
 * cgroupRoot paths inside the root resolve through `<root>/sys`, so the test config names
 * the host cgroup directly through a bind of /sys.
 */
export function startAgent(
  t: ExecutionContext,
  r: AgentRoot,
  extraArgs: string[] = [],
  options: { net?: boolean } = {},
): RunningAgent {
  // Inside the new mount namespace: the base and /sys are bound into the root before the
  // agent is exec'd (exec keeps PID 1).
  // With `net`, the agent gets a network namespace of its own with only lo (up), so its
  // services' ports are the test's alone (reach them with nsenter -t hostPid -n).
  const script =
    `set -e; ${options.net === true ? 'ip link set lo up; ' : ''}` +
    'mount --rbind / "$1/base"; mkdir -p "$1/sys"; mount --rbind /sys "$1/sys"; shift; exec "$@"';
  const proc = spawn(
    'unshare',
    [
      '--pid',
      '--fork',
      ...(options.net === true ? ['--net'] : []),
      '--mount',
      '--mount-proc',
      '--propagation',
      'private',
      '/bin/sh',
      '-c',
      script,
      'sh',
      r.root,
      process.execPath,
      BINS['milkyway-agent'],
      '--root',
      r.root,
      '--config',
      r.configPath,
      ...extraArgs,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const waiters: { re: RegExp; resolve: (s: string) => void }[] = [];
  const onData = (c: Buffer) => {
    out += c.toString();
    if (out.length > 4 << 20) out = out.slice(-(2 << 20));
    for (const w of [...waiters]) {
      const m = w.re.exec(out);
      if (m !== null) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m[0]);
      }
    }
  };
  proc.stdout?.on('data', onData);
  proc.stderr?.on('data', onData);
  const exit = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  t.teardown(async () => {
    if (proc.exitCode === null) {
      try {
        process.kill(await hostPid(), 'SIGKILL');
      } catch {
        proc.kill('SIGKILL');
      }
      await exit;
    }
  });
  const hostPid = async (): Promise<number> => {
    // unshare's only child is the namespace's PID 1.
    for (let i = 0; i < 100; i++) {
      const pid = proc.pid;
      if (pid !== undefined) {
        try {
          const tasks = await readdir(`/proc/${pid}/task`);
          for (const task of tasks) {
            const kids = (await readFile(`/proc/${pid}/task/${task}/children`, 'utf8')).trim();
            if (kids !== '') return Number(kids.split(' ')[0]);
          }
        } catch {
          // not there yet
        }
      }
      await new Promise((res) => setTimeout(res, 20));
    }
    throw new Error('agent pid not found');
  };
  return {
    proc,
    hostPid,
    output: () => out,
    exit,
    waitFor: (re, ms = 30_000) =>
      new Promise((resolve, reject) => {
        const m = re.exec(out);
        if (m !== null) return resolve(m[0]);
        const timer = setTimeout(
          () => reject(new Error(`timed out waiting for ${re}; output:\n${out.slice(-3000)}`)),
          ms,
        );
        waiters.push({
          re,
          resolve: (s) => {
            clearTimeout(timer);
            resolve(s);
          },
        });
        void exit.then(() =>
          setTimeout(() => {
            clearTimeout(timer);
            reject(new Error(`agent exited while waiting for ${re}; output:\n${out.slice(-3000)}`));
          }, 50),
        );
      }),
    kill: async (signal) => {
      process.kill(await hostPid(), signal);
    },
  };
}
