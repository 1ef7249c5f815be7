// The setup most fleet tests share: the real broker in-process on 127.0.0.1, peer links over
// recording AgentApis (or any AgentApi), and `mway` run as a user runs it, one config
// directory per operator. Everything is torn down when the test ends.
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import type { AgentApi } from '../../agent/core/agent-api.ts';
import { type PeerLink, type PeerLinkConfig, startPeerLink } from '../../agent/remote/peer-link.ts';
import { Broker, type BrokerOptions } from '../../control/broker/broker.ts';
import { tlsContextOptions } from '../../keys/index.ts';
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
