// The hostile-broker cases of test/agent/remote/hostile-broker.test.ts with NATS servers as the
// hostile party: whatever the servers store in a peer's mailbox — a command held past its
// expiry, one signed by an operator the peer's CRL revokes, a membership the operator never
// signed, a group command for a group the peer is not in, an operator revoked by a CRL written
// while the link runs — is refused by the peer with its code, and nothing reaches the agent. A
// real 3-node nats-server cluster on 127.0.0.1.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { NatsRelay } from '../../../control/broker/index.ts';
import {
  type Audience,
  buildCommand,
  type Message,
  signMembership,
  verifyResult,
} from '../../../control/wire/index.ts';
import { crlPem, type Envelope, issueCrl, signEnvelope } from '../../../keys/index.ts';
import { recorder } from '../../agent/remote/recording-agent.ts';
import { tempDir } from '../../helpers.ts';
import { type FleetPki, type Id, makeFleetPki } from '../command-fixture.ts';
import { natsPeerLink } from '../nats-peer-fixture.ts';
import { startNatsCluster } from '../nats-fixture.ts';

const pkiP = makeFleetPki();
const web: Audience = { fleet: 'prod', target: 'group:web', groups: ['web'], peers: ['p1'] };

let seqs = 0;
function cmd(by: Id, o: { audience?: Audience; ttlMs?: number } = {}): Envelope {
  return buildCommand({
    action: 'service.stop',
    args: { service: 'hello' },
    audience: o.audience ?? web,
    seq: ++seqs,
    key: by.key,
    chain: by.chain,
    ...(o.ttlMs === undefined ? {} : { ttlMs: o.ttlMs }),
  });
}

function refusal(p: FleetPki, m: Message | undefined): string | undefined {
  if (m === undefined) return 'no answer';
  const r = verifyResult(m.result as Envelope, { anchors: [p.root.cert] });
  if (r.signer.peerId !== 'p1') return `signed by ${r.signer.peerId}`;
  return r.payload.status === 'refused' ? r.payload.code : `not refused: ${r.payload.status}`;
}

test('held past expiry, revoked, invented and misdirected: what NATS servers store is refused with its code and nothing runs', async (t) => {
  const p = await pkiP;
  const cluster = await startNatsCluster(t, 3);
  const relay = await NatsRelay.open({ servers: cluster.urls });
  t.teardown(() => relay.close());
  await relay.ensureStreams(3);
  const dir = await tempDir(t);
  const crlPath = join(dir, 'root.crl');
  await writeFile(crlPath, crlPem(p.crl));
  const rec = recorder();
  await natsPeerLink(t, p, p.p1, { servers: [cluster.urls[1] as string] }, { rec, crls: [crlPath] });
  let jobs = 0;
  const deliver = async (env: Envelope): Promise<string | undefined> => {
    const jobId = `job-${++jobs}`;
    await relay.deliver('p1', jobId, env, new Date(Date.now() + 600_000).toISOString());
    return refusal(p, await relay.answer('p1', jobId, 60_000));
  };
  let memberships = 0;
  const member = (group: string, envelope: Envelope) =>
    relay.deliverMembership('p1', { group, op: 'put', membership: envelope, id: `m-${++memberships}` });

  // The genuine membership of web, so that group commands are addressed to a member.
  await member(
    'web',
    signMembership({
      fleet: 'prod',
      group: 'web',
      peer: 'p1',
      member: true,
      key: p.op.key,
      chain: p.op.chain,
    }),
  );
  // Invented memberships of db: signed by another peer's key, and by a foreign root's operator.
  const byPeer = signEnvelope({
    type: 'result',
    payload: {
      v: 1,
      fleet: 'prod',
      group: 'db',
      peer: 'p1',
      member: true,
      issuedAt: new Date().toISOString(),
    },
    key: p.p2.key,
    chain: p.p2.chain,
  });
  await member('db', { ...byPeer, type: 'membership' } as Envelope);
  await member(
    'db',
    signMembership({
      fleet: 'prod',
      group: 'db',
      peer: 'p1',
      member: true,
      key: p.foreignOp.key,
      chain: p.foreignOp.chain,
    }),
  );
  // ... so a command for db is not for p1, whether the audience names db or web as p1's group.
  t.is(
    await deliver(cmd(p.admin, { audience: { ...web, target: 'group:db', groups: ['db'] } })),
    'E_CMD_NOT_MEMBER',
  );
  t.is(await deliver(cmd(p.admin, { audience: { ...web, groups: ['db'] } })), 'E_CMD_NOT_MEMBER');
  // A 1 s command the servers held back for 2.5 s before storing it.
  const short = cmd(p.op, { ttlMs: 1000 });
  await new Promise((r) => setTimeout(r, 2500));
  t.is(await deliver(short), 'E_CMD_EXPIRED');
  // An operator the peer's CRL revokes.
  t.is(await deliver(cmd(p.revokedOp)), 'E_CMD_OPERATOR_REVOKED');
  t.deepEqual(rec.calls, [], 'nothing reached the agent');
  // The same peer still runs a genuine command for web (the refusals left it working).
  t.is(await deliver(cmd(p.op)), 'not refused: ok');
  t.deepEqual(rec.calls, ['stop hello']);
  // A CRL written while the link runs revokes that operator from the next command on.
  const crl = await issueCrl({
    issuerKey: p.root.key,
    issuerCert: p.root.cert,
    serials: [p.op.cert.serial],
    previous: p.crl,
  });
  await writeFile(crlPath, crlPem(crl));
  t.is(await deliver(cmd(p.op)), 'E_CMD_OPERATOR_REVOKED');
  t.deepEqual(rec.calls, ['stop hello']);
});
