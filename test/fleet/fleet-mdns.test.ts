// A real agent without a broker address finds the broker by mDNS: the broker
// (`milkywaysrvd`, mDNS on) runs in one network namespace, the agent in namespace mode in
// another, joined by a veth pair; `mway` (in the agent's network namespace) then groups the
// peer and gets its signed status. Needs root (ip netns); namespaces are deleted afterwards.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { newIdentity } from '../../keys/index.ts';
import { makeRoot } from '../agent/_namespace.ts';
import { makeFleetPki } from '../control/command-fixture.ts';
import { vethPair } from '../control/netns-fixture.ts';
import { BINS, jsonOut, tempDir } from '../helpers.ts';

const pkiP = makeFleetPki();

function lines(proc: ChildProcess): {
  text: () => string;
  waitFor: (re: RegExp, ms: number) => Promise<void>;
} {
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return {
    text: () => out,
    waitFor: async (re, ms) => {
      const end = Date.now() + ms;
      while (!re.test(out)) {
        if (Date.now() > end || proc.exitCode !== null)
          throw new Error(`waiting for ${re}; output:\n${out.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

test('an agent with no broker address finds it by mDNS across network namespaces and takes commands', async (t) => {
  const p = await pkiP;
  const dir = await tempDir(t);
  const [nsA, nsB] = await vethPair(t, 'mc', 232);
  const config = join(dir, 'broker.json');
  await writeFile(
    config,
    JSON.stringify({
      listen: '0.0.0.0:7443',
      key: p.broker.keyPath,
      certificate: p.broker.certPath,
      anchors: [p.root.certPath],
      database: join(dir, 'broker.db'),
      mdns: { enabled: true, name: 'fleet-broker' },
    }),
  );
  const broker = spawn(
    'ip',
    ['netns', 'exec', nsA, process.execPath, BINS.milkywaysrvd, '--config', config, '--json'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const bout = lines(broker);
  t.teardown(() => {
    broker.kill('SIGKILL');
  });
  await bout.waitFor(/fingerprint/, 20_000);

  const user = await newIdentity({
    role: 'user',
    name: 'user',
    outDir: join(dir, 'user'),
    issuerKey: p.root.key,
    issuerCert: p.root.cert,
  });
  const r = await makeRoot(
    t,
    { dir, rootCert: p.root.certPath, userKeyPath: user.keyPath, userCertPath: user.certPath },
    {
      config: {
        // `ip netns exec` mounts a fresh /sys without the cgroup tree: services are not run here.
        cgroupRoot: '/sys/fs/cgroup/unified/none',
        control: {
          fleet: 'prod',
          key: `/base${p.p1.keyPath}`,
          cert: `/base${p.p1.certPath}`,
          kemKey: `/base${p.p1.kemKeyPath}`,
          anchors: ['/certs'],
          maxBackoffMs: 1000,
        },
      },
    },
  );
  const script = 'set -e; mount --rbind / "$1/base"; shift; exec "$@"';
  const agent = spawn(
    'ip',
    [
      'netns',
      'exec',
      nsB,
      'unshare',
      '--pid',
      '--fork',
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
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const aout = lines(agent);
  t.teardown(async () => {
    // `ip netns exec` execs unshare, whose only child is the namespace's PID 1 (the agent):
    // killing that ends the namespace and everything in it.
    try {
      const kids = await readFile(`/proc/${agent.pid}/task/${agent.pid}/children`, 'utf8');
      const pid1 = Number(kids.trim().split(' ')[0]);
      if (pid1 > 0) process.kill(pid1, 'SIGKILL');
    } catch {
      // already gone
    }
    agent.kill('SIGKILL');
  });
  await aout.waitFor(/connected to broker 10\.232\.0\.1:7443 as p1/, 30_000);

  const env = { ...process.env, MWAY_CONFIG_DIR: join(dir, 'mway'), NO_COLOR: '1' };
  const mway = (...args: string[]) =>
    execa('ip', ['netns', 'exec', nsB, process.execPath, BINS.mway, ...args], {
      env,
      reject: false,
      timeout: 60_000,
    });
  const init = await mway(
    'config',
    'init',
    '--broker',
    '10.232.0.1:7443',
    '--fleet',
    'prod',
    '--key',
    p.admin.keyPath,
    '--cert',
    p.admin.certPath,
    '--anchor',
    p.root.certPath,
  );
  t.is(init.exitCode, 0, String(init.stderr));
  t.is((await mway('group', 'create', 'web')).exitCode, 0);
  t.is((await mway('group', 'add', 'web', 'p1')).exitCode, 0);
  await aout.waitFor(/membership of web held/, 20_000);
  const st = await mway('status', '--group', 'web', '--json', '--static');
  t.is(st.exitCode, 0, String(st.stdout) + String(st.stderr));
  const report = jsonOut(String(st.stdout)) as {
    peers: Array<{ peer: string; outcome: string; output: { agent: { mode: string } } }>;
  };
  t.deepEqual(
    report.peers.map((x) => [x.peer, x.outcome, x.output.agent.mode]),
    [['p1', 'ok', 'namespace']],
  );
});
