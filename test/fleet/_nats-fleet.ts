// milkywaysrvd in NATS mode over a real 3-node JetStream cluster on 127.0.0.1 (the fixture of
// the NATS fleet tests): the broker in-process, peer links over recording AgentApis connected to
// the cluster, and `mway`'s operator client over TLS to the broker. Torn down with the test.
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { startPeerLink } from '../../agent/remote/peer-link.ts';
import { Broker } from '../../control/broker/index.ts';
import { OperatorClient } from '../../control/operator/index.ts';
import { tlsContextOptions } from '../../keys/index.ts';
import { type Recorder, recorder } from '../agent/remote/recording-agent.ts';
import { type FleetPki, type Id, makeFleetPki } from '../control/command-fixture.ts';
import { startNatsCluster } from '../control/nats-fixture.ts';
import { tempDir } from '../helpers.ts';

const pkiP = makeFleetPki();

export async function natsFleet(t: ExecutionContext) {
  const p: FleetPki = await pkiP;
  const dir = await tempDir(t);
  const cluster = await startNatsCluster(t, 3);
  const logs: string[] = [];
  const startBroker = (port?: number) =>
    Broker.start({
      dbPath: join(dir, 'broker.sqlite'),
      tls: tlsContextOptions({
        keyPath: p.broker.keyPath,
        certPath: p.broker.certPath,
        anchors: [p.root.cert],
      }),
      certificate: p.broker.cert,
      anchors: [p.root.cert],
      nats: { servers: cluster.urls, replicas: 3 },
      ...(port === undefined ? {} : { port }),
      log: (level, m) => logs.push(`${level}: ${m}`),
    });
  let broker = await startBroker();
  t.teardown(() => broker.close());
  /** Closes the broker, runs `meanwhile`, and starts it again on the same database and port. */
  const restartBroker = async (meanwhile: () => Promise<void> = async () => {}) => {
    const port = broker.port;
    await broker.close();
    await meanwhile();
    broker = await startBroker(port);
    return broker;
  };
  const peer = async (id: Id, rec: Recorder = recorder()) => {
    const link = await startPeerLink({
      api: rec.api,
      stateDir: join(dir, id.cert.peerId as string),
      log: () => {},
      config: {
        nats: { servers: cluster.urls },
        fleet: 'prod',
        key: id.keyPath,
        cert: id.certPath,
        kemKey: id.kemKeyPath,
        anchors: [p.root.certPath],
        skewMs: 0,
        maxBackoffMs: 300,
      },
    });
    t.teardown(() => link.stop());
    return { rec, link };
  };
  const op = async () => {
    const c = await OperatorClient.connect(
      {
        broker: `127.0.0.1:${broker.port}`,
        fleet: 'prod',
        key: p.admin.keyPath,
        cert: p.admin.certPath,
        anchors: [p.root.certPath],
        crls: [],
      },
      join(dir, 'mway'),
    );
    t.teardown(() => c.close());
    return c;
  };
  return { p, cluster, broker, peer, op, logs, restartBroker };
}
