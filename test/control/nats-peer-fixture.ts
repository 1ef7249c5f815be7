// A peer link in NATS mode for the broker-side NATS tests: one fleet PKI identity, the fleet
// root as its only anchor, no clock skew allowed and a short retry backoff, stopped when the
// test ends. What the tests vary is where it connects (a cluster, a leaf, a proxy), its
// credentials, its log and its CRLs.
import type { ExecutionContext } from 'ava';
import type { Log } from '../../agent/remote/peer-executor.ts';
import { type PeerLink, type PeerLinkConfig, startPeerLink } from '../../agent/remote/peer-link.ts';
import type { Recorder } from '../agent/remote/recording-agent.ts';
import { tempDir } from '../helpers.ts';
import type { FleetPki, Id } from './command-fixture.ts';

export async function natsPeerLink(
  t: ExecutionContext,
  p: FleetPki,
  id: Id,
  nats: NonNullable<PeerLinkConfig['nats']>,
  o: { rec: Recorder; stateDir?: string; log?: Log; crls?: string[] },
): Promise<PeerLink> {
  const link = await startPeerLink({
    api: o.rec.api,
    stateDir: o.stateDir ?? (await tempDir(t)),
    log: o.log ?? (() => {}),
    config: {
      nats,
      fleet: 'prod',
      key: id.keyPath,
      cert: id.certPath,
      kemKey: id.kemKeyPath,
      anchors: [p.root.certPath],
      ...(o.crls === undefined ? {} : { crls: o.crls }),
      skewMs: 0,
      maxBackoffMs: 300,
    },
  });
  t.teardown(() => link.stop());
  return link;
}
