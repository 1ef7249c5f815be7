// The setup most fleet tests share: the real broker in-process on 127.0.0.1, peer links over
// recording AgentApis (or any AgentApi) or real agents in namespace mode, and `mway` run as a
// user runs it, one config directory per operator. Everything is torn down when the test ends.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import type { AgentApi } from '../../agent/core/agent-api.ts';
import { type PeerLink, type PeerLinkConfig, startPeerLink } from '../../agent/remote/peer-link.ts';
import { Broker, type BrokerOptions } from '../../control/broker/broker.ts';
import { readCertificates, readPrivateKey, tlsContextOptions } from '../../keys/index.ts';
import { packLayer } from '../../layers/pack.ts';
import { makeRoot, type RunningAgent, startAgent } from '../agent/_namespace.ts';
import { recorder } from '../agent/remote/recording-agent.ts';
import type { FleetPki, Id } from '../control/command-fixture.ts';
import { type CliRun, cli, tempDir, until } from '../helpers.ts';

/** `mway` as one operator: call it with the arguments; `env` is its MWAY_CONFIG_DIR. */
export type Mway = ((...args: string[]) => Promise<CliRun>) & { env: Record<string, string> };

export interface Fleet {
  dir: string;
  broker: Broker;
  address: string;
  /** Each peer's current link by peer id (start() replaces it). */
  links: Map<string, PeerLink>;
  /** Starts `id`'s peer link (state in dir/<peerId>) and waits until the broker has it. */
  start(id: Id, o?: { api?: AgentApi; config?: Partial<PeerLinkConfig> }): Promise<PeerLink>;
  /** `mway config init` for `who` in dir/mway-<name> (checked), then `mway` as that operator. */
  as(who: Id, name: string, timeout?: number): Promise<Mway>;
}

export async function startFleet(
  t: ExecutionContext,
  p: FleetPki,
  o: { broker?: Partial<BrokerOptions> } = {},
): Promise<Fleet> {
  const dir = await tempDir(t);
  const broker = await Broker.start({
    dbPath: join(dir, 'broker.sqlite'),
    tls: tlsContextOptions({
      keyPath: p.broker.keyPath,
      certPath: p.broker.certPath,
      anchors: [p.root.cert],
    }),
    certificate: p.broker.cert,
    anchors: [p.root.cert],
    ...o.broker,
  });
  t.teardown(() => broker.close());
  const address = `127.0.0.1:${broker.port}`;
  const links = new Map<string, PeerLink>();
  const start: Fleet['start'] = async (id, so = {}) => {
    const peerId = id.cert.peerId as string;
    const link = await startPeerLink({
      api: so.api ?? recorder().api,
      stateDir: join(dir, peerId),
      log: () => {},
      config: {
        broker: address,
        fleet: 'prod',
        key: id.keyPath,
        cert: id.certPath,
        ...(id.kemKeyPath === undefined ? {} : { kemKey: id.kemKeyPath }),
        anchors: [p.root.certPath],
        maxBackoffMs: 300,
        ...so.config,
      },
    });
    links.set(peerId, link);
    t.teardown(() => link.stop());
    await until(`${peerId} linked`, () => broker.peers.has(peerId));
    return link;
  };
  const as: Fleet['as'] = async (who, name, timeout = 90_000) => {
    const env = { MWAY_CONFIG_DIR: join(dir, `mway-${name}`) };
    const init = await cli(
      'mway',
      [
        'config',
        'init',
        '--broker',
        address,
        '--fleet',
        'prod',
        '--key',
        who.keyPath,
        '--cert',
        who.certPath,
        '--anchor',
        p.root.certPath,
      ],
      { env },
    );
    t.is(init.exitCode, 0, init.stderr);
    return Object.assign((...args: string[]) => cli('mway', args, { env, timeout }), { env });
  };
  return { dir, broker, address, links, start, as };
}

/**
 * A real agent (namespace mode, test/agent/_namespace.ts) that links to the fleet's broker as
 * `id`, with `signer` (a user) signing its secure config. `restart()` stops it in order and
 * boots it again on the same disk; resolves once its peer link is back.
 */
export async function startAgentPeer(
  t: ExecutionContext,
  f: Fleet,
  p: FleetPki,
  id: Id,
  signer: { keyPath: string; certPath: string },
): Promise<{ root: string; agent: () => RunningAgent; restart: (wait?: RegExp) => Promise<void> }> {
  const r = await makeRoot(
    t,
    { dir: f.dir, rootCert: p.root.certPath, userKeyPath: signer.keyPath, userCertPath: signer.certPath },
    {
      config: {
        control: {
          broker: f.address,
          fleet: 'prod',
          key: `/base${id.keyPath}`,
          cert: `/base${id.certPath}`,
          kemKey: `/base${id.kemKeyPath}`,
          anchors: ['/certs'],
          maxBackoffMs: 500,
        },
      },
    },
  );
  const peerId = id.cert.peerId as string;
  let agent = startAgent(t, r);
  await agent.waitFor(/peer link started/);
  await until(`${peerId} connected`, () => f.broker.peers.has(peerId));
  return {
    root: r.root,
    agent: () => agent,
    restart: async (wait) => {
      await agent.kill('SIGTERM');
      await agent.exit;
      await until(`${peerId} gone`, () => !f.broker.peers.has(peerId));
      agent = startAgent(t, r);
      if (wait !== undefined) await agent.waitFor(wait);
      await agent.waitFor(/peer link started/);
      await until(`${peerId} back`, () => f.broker.peers.has(peerId));
    },
  };
}

/** A user-signed layer `name` 1.0.0 (app) with files and services, packed to dir/<name>.mwl. */
export async function packTestLayer(
  dir: string,
  name: string,
  signer: { keyPath: string; certPath: string },
  services: Array<{ name: string; execStart: string[] }> = [],
): Promise<string> {
  const src = join(dir, 'src', name);
  await mkdir(join(src, 'rootfs', 'etc'), { recursive: true });
  await writeFile(join(src, 'rootfs', 'etc', `${name}.conf`), `${name}\n`);
  await writeFile(join(src, 'layer.json'), JSON.stringify({ name, version: '1.0.0', kind: 'app', services }));
  const out = join(dir, `${name}.mwl`);
  await packLayer({
    dir: src,
    key: await readPrivateKey(signer.keyPath),
    chain: await readCertificates(signer.certPath),
    out,
  });
  return out;
}
