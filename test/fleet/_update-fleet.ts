// A fleet for A/B update tests on the host: a real broker, `mway`, and REAL agents in
// namespace mode (each PID 1 of its own PID and mount namespace) each with a disk image of
// its own built with a boot chain (boot-a/boot-b carry the slot bits and each slot's stage 2).
// A "boot" is what a machine does: the agent exits 133 on reboot, the real C stage 1 picks the
// slot from that disk's GPT bits (writing a trial's try down first), and the agent starts again
// on the root hash stage 1 would put on the command line.
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { Broker } from '../../control/broker/broker.ts';
import type { ImageKeys } from '../../imagebuild/dev-keys.ts';
import { crlPem, newIdentity, tlsContextOptions } from '../../keys/index.ts';
import type { SlotName } from '../../update/index.ts';
import { type AgentRoot, makeRoot, type RunningAgent, startAgent } from '../agent/_namespace.ts';
import { extraPeer, makeFleetPki } from '../control/command-fixture.ts';
import { type CliRun, cli, jsonOut, tempDir, until } from '../helpers.ts';
import { type CoreosFiles, devKeys, makeBundle, makeCoreos, makeSlotDisk } from '../update/_slot-disk.ts';
import { stage1 } from '../update/_stage1.ts';

export interface FleetMachine {
  id: string;
  root: AgentRoot;
  disk: string;
  agent: RunningAgent;
}

export interface UpdateFleet {
  dir: string;
  vendor: ImageKeys;
  v1: CoreosFiles;
  machines: FleetMachine[];
  mway: (...args: string[]) => Promise<CliRun>;
  env: Record<string, string>;
  /** A bundle of `version` signed by the fleet's vendor (`fillerBytes` makes CoreOS bigger). */
  bundle: (version: string, rollbackIndex: number, fillerBytes?: number) => Promise<string>;
  /**
   * The machine's next boot: waits for its agent to exit (a reboot; `kill` ends it first),
   * runs stage 1 on its disk, starts the agent on the chosen root hash; `before` runs between
   * (the new slot's layers partition). Returns the slot stage 1 booted.
   */
  boot: (
    m: FleetMachine,
    o?: { kill?: boolean; before?: () => Promise<void>; offline?: boolean },
  ) => Promise<SlotName>;
}

export async function updateFleet(
  t: ExecutionContext,
  o: {
    peers: number;
    graceMs?: number;
    readyWithinMs?: number;
    slotMiB?: number;
    /** More of the agents' `update` config (requireBroker). */
    update?: Record<string, unknown>;
  },
): Promise<UpdateFleet> {
  const p = await makeFleetPki();
  const dir = await tempDir(t, 'mway-update-fleet-');
  const vendor = await devKeys(join(dir, 'vendor'));
  const v1 = await makeCoreos(dir, vendor, { version: '1.0' });
  const disk = await makeSlotDisk(dir, v1, '1.0', {
    bootChain: vendor,
    ...(o.slotMiB === undefined ? {} : { slotMiB: o.slotMiB }),
  });
  const broker = await Broker.start({
    dbPath: join(dir, 'broker.sqlite'),
    tls: tlsContextOptions({
      keyPath: p.broker.keyPath,
      certPath: p.broker.certPath,
      anchors: [p.root.cert],
    }),
    certificate: p.broker.cert,
    anchors: [p.root.cert],
    crls: [p.crl],
  });
  t.teardown(() => broker.close());
  const address = `127.0.0.1:${broker.port}`;
  const user = await newIdentity({
    role: 'user',
    name: 'user',
    outDir: join(dir, 'user'),
    issuerKey: p.root.key,
    issuerCert: p.root.cert,
  });
  const agentPki = { dir, rootCert: p.root.certPath, userKeyPath: user.keyPath, userCertPath: user.certPath };
  const ids = [p.p1, p.p2, ...(o.peers > 2 ? [await extraPeer(p, 'p3')] : [])].slice(0, o.peers);
  const machines: FleetMachine[] = [];
  for (const [i, id] of ids.entries()) {
    const root = await makeRoot(t, agentPki, {
      config: {
        control: {
          broker: address,
          fleet: 'prod',
          key: `/base${id.keyPath}`,
          cert: `/base${id.certPath}`,
          kemKey: `/base${id.kemKeyPath}`,
          anchors: ['/certs'],
          maxBackoffMs: 500,
          statusIntervalMs: 1000,
        },
        update: {
          disk: '/disk.img',
          rootHash: v1.rootHash,
          stateFile: '/data/update.json',
          readyWithinMs: o.readyWithinMs ?? 5000,
          graceMs: o.graceMs ?? 100,
          ...o.update,
        },
      },
    });
    // The vendor root is a trust anchor of the machine, as on the certificate partition.
    await copyFile(
      join(dir, 'vendor', 'keys', 'vendor-root.crt'),
      join(root.root, 'certs', 'vendor-root.crt'),
    );
    await copyFile(disk, join(root.root, 'disk.img'));
    const agent = startAgent(t, root);
    await agent.waitFor(/peer link started/);
    machines.push({ id: `p${i + 1}`, root, disk: join(root.root, 'disk.img'), agent });
  }
  await until('agents connected', () => machines.every((m) => broker.peers.has(m.id)));
  const env = { MWAY_CONFIG_DIR: join(dir, 'mway') };
  const mway = (...args: string[]) => cli('mway', args, { env, timeout: 180_000 });
  const crlPath = join(dir, 'root.crl');
  await writeFile(crlPath, crlPem(p.crl));
  const base = ['--broker', address, '--fleet', 'prod', '--anchor', p.root.certPath, '--crl', crlPath];
  const init = await mway('config', 'init', ...base, '--key', p.admin.keyPath, '--cert', p.admin.certPath);
  if (init.exitCode !== 0) throw new Error(`mway config init: ${init.stderr}`);
  for (const args of [
    ['group', 'create', 'web'],
    ['group', 'add', 'web', ...machines.map((m) => m.id)],
  ]) {
    const r = await mway(...args);
    if (r.exitCode !== 0) throw new Error(`mway ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  }
  await until('memberships held', async () => {
    const rows = jsonOut((await mway('status', '--json')).stdout) as Array<{ groups?: string[] }>;
    return rows.length === machines.length && rows.every((x) => x.groups?.includes('web'));
  });
  let made = 0;
  const bundle = async (version: string, rollbackIndex: number, fillerBytes?: number) => {
    const sub = join(dir, `b${++made}`);
    const { mkdir } = await import('node:fs/promises');
    await mkdir(sub);
    const c = await makeCoreos(sub, vendor, {
      version,
      ...(fillerBytes === undefined ? {} : { fillerBytes }),
    });
    return (await makeBundle(sub, vendor, c, { version, rollbackIndex })).path;
  };
  const boot: UpdateFleet['boot'] = async (m, bo = {}) => {
    if (bo.kill === true && m.agent.proc.exitCode === null) await m.agent.kill('SIGKILL');
    const code = await m.agent.exit;
    if (bo.kill !== true && code !== 133) throw new Error(`agent ${m.id} exited ${code}, not 133 (reboot)`);
    const choice = await stage1(m.disk, vendor);
    if (choice === null) throw new Error(`stage 1 finds no bootable slot on ${m.id}`);
    const cfg = JSON.parse(await readFile(m.root.configPath, 'utf8')) as { update: Record<string, unknown> };
    cfg.update.rootHash = choice.rootHash;
    await writeFile(m.root.configPath, JSON.stringify(cfg));
    await bo.before?.();
    m.agent = startAgent(t, m.root);
    await m.agent.waitFor(/peer link started/);
    // offline: a boot whose agent cannot reach the broker (its config says so).
    if (bo.offline !== true) await until(`${m.id} connected again`, () => broker.peers.has(m.id));
    return choice.slot;
  };
  return { dir, vendor, v1, machines, mway, env, bundle, boot };
}
