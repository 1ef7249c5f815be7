// The broker is untrusted: a scripted broker (real TLS 1.3, the broker certificate) delivers
// tampered, retargeted, replayed, late and invented messages to a real peer link; every one is
// refused with its own code, reported back as a signed refusal, and nothing reaches the agent.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import {
  type Audience,
  buildCommand,
  type CommandAction,
  envelopeDigest,
} from '../../../control/wire/command.ts';
import { signMembership } from '../../../control/wire/membership.ts';
import { startPeerLink } from '../../../agent/remote/peer-link.ts';
import type { Message } from '../../../control/wire/protocol.ts';
import { verifyResult } from '../../../control/wire/result.ts';
import { crlPem, type Envelope, issueCrl, signEnvelope } from '../../../keys/index.ts';
import { tempDir } from '../../helpers.ts';
import { type FleetPki, type Id, makeFleetPki } from '../../control/command-fixture.ts';
import { recorder } from './recording-agent.ts';
import { type StandInBroker, standInBroker } from './stand-in-broker.ts';

const pkiP = makeFleetPki();

async function setup(
  t: ExecutionContext,
  o: { skewMs?: number; stateDir?: string; broker?: StandInBroker } = {},
) {
  const p = await pkiP;
  const broker = o.broker ?? (await standInBroker(p));
  if (o.broker === undefined) t.teardown(() => broker.close());
  const dir = await tempDir(t);
  const crlPath = join(dir, 'root.crl');
  await writeFile(crlPath, crlPem(p.crl));
  const rec = recorder();
  const logs: string[] = [];
  const stateDir = o.stateDir ?? (await tempDir(t));
  const link = await startPeerLink({
    api: rec.api,
    stateDir,
    log: (level, m) => logs.push(`${level}: ${m}`),
    config: {
      broker: broker.address,
      fleet: 'prod',
      key: p.p1.keyPath,
      cert: p.p1.certPath,
      kemKey: p.p1.kemKeyPath,
      anchors: [p.root.certPath],
      crls: [crlPath],
      skewMs: o.skewMs ?? 0,
      maxBackoffMs: 300,
    },
  });
  t.teardown(() => link.stop());
  await broker.waitConnected();
  return { p, broker, rec, logs, link, stateDir, crlPath };
}

const web: Audience = { fleet: 'prod', target: 'group:web', groups: ['web'], peers: ['p1'] };

// Each command takes the operator's next sequence number, as `mway` does (peers refuse reuse).
let seqs = 0;
function cmd(
  by: Id,
  action: CommandAction,
  args: Record<string, unknown>,
  o: { audience?: Audience; ttlMs?: number } = {},
): Envelope {
  return buildCommand({
    action,
    args,
    audience: o.audience ?? web,
    seq: ++seqs,
    key: by.key,
    chain: by.chain,
    ...(o.ttlMs === undefined ? {} : { ttlMs: o.ttlMs }),
  });
}

let jobs = 0;
async function deliver(b: StandInBroker, command: unknown): Promise<Message> {
  const jobId = `job-${++jobs}`;
  b.send('command-deliver', { jobId, command, expiresAt: new Date(Date.now() + 60_000).toISOString() });
  return b.waitFor((m) => m.kind === 'result' && m.jobId === jobId);
}

async function joinGroup(p: FleetPki, b: StandInBroker, group = 'web', by: Id = p.op): Promise<Message> {
  b.send('membership-deliver', {
    group,
    peerId: 'p1',
    op: 'put',
    membership: signMembership({
      fleet: 'prod',
      group,
      peer: 'p1',
      member: true,
      key: by.key,
      chain: by.chain,
    }),
  });
  return b.waitFor((m) => m.kind === 'membership-ack' && m.group === group);
}

function refusal(p: FleetPki, m: Message): string | undefined {
  const r = verifyResult(m.result as Envelope, { anchors: [p.root.cert] });
  if (r.signer.peerId !== 'p1') return `signed by ${r.signer.peerId}`;
  return r.payload.status === 'refused' ? r.payload.code : `not refused: ${r.payload.status}`;
}

test('a faithful broker: membership, command and signed result bound to the command', async (t) => {
  const { p, broker, rec } = await setup(t);
  const st = await broker.waitFor((m) => m.kind === 'status');
  t.is(((st.status as Envelope).payload as { peer: string }).peer, 'p1');
  t.true((await joinGroup(p, broker)).ok as boolean);
  const env = cmd(p.op, 'service.restart', { service: 'hello' });
  const m = await deliver(broker, env);
  const r = verifyResult(m.result as Envelope, {
    anchors: [p.root.cert],
    expect: { command: (env.payload as { id: string }).id, commandDigest: envelopeDigest(env) },
  });
  t.is(r.payload.status, 'ok');
  t.is(m.outcome, 'ok');
  t.deepEqual(rec.calls, ['restart hello']);
});

test('tampered, retargeted, replayed, late and invented messages are refused and nothing executes', async (t) => {
  const { p, broker, rec, logs } = await setup(t);
  await joinGroup(p, broker);
  // Tamper: the broker changes the service to stop.
  const good = cmd(p.op, 'service.stop', { service: 'hello' });
  const tampered = { ...good, payload: { ...(good.payload as object), args: { service: 'database' } } };
  t.is(refusal(p, await deliver(broker, tampered)), 'E_CMD_SIGNATURE');
  // Retarget: a command signed for p2 handed to p1.
  const forP2 = cmd(p.op, 'service.stop', { service: 'hello' }, { audience: { ...web, peers: ['p2'] } });
  t.is(refusal(p, await deliver(broker, forP2)), 'E_CMD_NOT_ADDRESSED');
  // Retarget to a group p1 is not in (the audience lists p1: the broker resolved it wrongly).
  const forDb = cmd(
    p.admin,
    'service.stop',
    { service: 'hello' },
    { audience: { ...web, target: 'group:db', groups: ['db'] } },
  );
  t.is(refusal(p, await deliver(broker, forDb)), 'E_CMD_NOT_MEMBER');
  // Invented membership: signed by the broker-reachable peer key, or by another root's operator.
  const invented = signEnvelope({
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
  broker.send('membership-deliver', {
    group: 'db',
    peerId: 'p1',
    op: 'put',
    membership: { ...invented, type: 'membership' },
  });
  const ack = await broker.waitFor((m) => m.kind === 'membership-ack' && m.group === 'db');
  t.is(ack.ok, false);
  t.is(ack.code, 'E_MEMBERSHIP_INVALID');
  t.is((await joinGroup(p, broker, 'db', p.foreignOp)).code, 'E_MEMBERSHIP_INVALID');
  t.is(
    refusal(
      p,
      await deliver(
        broker,
        cmd(p.admin, 'service.stop', { service: 'hello' }, { audience: { ...web, groups: ['db'] } }),
      ),
    ),
    'E_CMD_NOT_MEMBER',
  );
  // Delay past expiry: a 1 s command held back for 2.5 s.
  const short = cmd(p.op, 'service.stop', { service: 'hello' }, { ttlMs: 1000 });
  await new Promise((r) => setTimeout(r, 2500));
  t.is(refusal(p, await deliver(broker, short)), 'E_CMD_EXPIRED');
  // Revoked operator (the peer holds the CRL).
  t.is(
    refusal(p, await deliver(broker, cmd(p.revokedOp, 'service.stop', { service: 'hello' }))),
    'E_CMD_OPERATOR_REVOKED',
  );
  t.deepEqual(rec.calls, [], 'nothing reached the agent');
  t.true(
    logs.some((l) => l.includes('E_CMD_NOT_ADDRESSED')),
    'refusals are logged on the peer',
  );
});

test('a replayed command runs once; the redelivery is refused and carries the original result', async (t) => {
  const { p, broker, rec } = await setup(t);
  await joinGroup(p, broker);
  const env = cmd(p.op, 'service.restart', { service: 'hello' });
  const first = await deliver(broker, env);
  t.is(first.outcome, 'ok');
  const second = await deliver(broker, env);
  t.is(refusal(p, second), 'E_CMD_REPLAYED');
  const previous = (
    verifyResult(second.result as Envelope, { anchors: [p.root.cert] }).payload.output as {
      previous: unknown;
    }
  ).previous;
  t.deepEqual(previous, first.result);
  t.deepEqual(rec.calls, ['restart hello']);
});

test('after a dropped connection and an agent restart a command is still executed at most once', async (t) => {
  const { p, broker, rec, link, stateDir } = await setup(t);
  await joinGroup(p, broker);
  const env = cmd(p.op, 'service.restart', { service: 'hello' });
  t.is((await deliver(broker, env)).outcome, 'ok');
  broker.drop();
  await broker.waitConnected();
  t.is(refusal(p, await deliver(broker, env)), 'E_CMD_REPLAYED');
  // The agent restarts: a new link on the same state directory keeps memberships and replay cache.
  await link.stop();
  broker.drop();
  const again = await setup(t, { stateDir, broker });
  t.is(refusal(p, await deliver(broker, env)), 'E_CMD_REPLAYED');
  const next = cmd(p.op, 'service.restart', { service: 'hello' });
  t.is((await deliver(broker, next)).outcome, 'ok', 'the membership survived the restart');
  t.deepEqual(rec.calls, ['restart hello']);
  t.deepEqual(again.rec.calls, ['restart hello']);
});

test('a CRL written while the link runs revokes an operator from the next command on', async (t) => {
  const { p, broker, rec, crlPath } = await setup(t);
  await joinGroup(p, broker);
  t.is((await deliver(broker, cmd(p.op, 'service.restart', { service: 'hello' }))).outcome, 'ok');
  const crl = await issueCrl({
    issuerKey: p.root.key,
    issuerCert: p.root.cert,
    serials: [p.op.cert.serial],
    previous: p.crl,
  });
  await writeFile(crlPath, crlPem(crl));
  t.is(
    refusal(p, await deliver(broker, cmd(p.op, 'service.restart', { service: 'hello' }))),
    'E_CMD_OPERATOR_REVOKED',
  );
  t.deepEqual(rec.calls, ['restart hello']);
});

test('a CRL file damaged while the link runs: the peer keeps its previous list in force (a revoked operator stays revoked)', async (t) => {
  const { p, broker, rec, crlPath, logs } = await setup(t);
  await joinGroup(p, broker);
  // Revoke the operator, and check the revocation took effect.
  const crl = await issueCrl({
    issuerKey: p.root.key,
    issuerCert: p.root.cert,
    serials: [p.op.cert.serial],
    previous: p.crl,
  });
  await writeFile(crlPath, crlPem(crl));
  t.is(
    refusal(p, await deliver(broker, cmd(p.op, 'service.restart', { service: 'hello' }))),
    'E_CMD_OPERATOR_REVOKED',
  );
  // Now damage the file three ways: cut short, a flipped signature byte, broken armor. A lax
  // reader would drop the list (and the revocation) each time; the peer keeps the last one.
  const pem = crlPem(crl);
  const der = Buffer.from(crl.der);
  der[der.length - 7] = (der[der.length - 7] as number) ^ 1;
  for (const damaged of [
    pem.slice(0, pem.length / 2),
    crlPem({ ...crl, der: new Uint8Array(der) }),
    pem.replace('BEGIN X509 CRL', 'BEGIN X509 CRX'),
  ]) {
    await writeFile(crlPath, damaged);
    t.is(
      refusal(p, await deliver(broker, cmd(p.op, 'service.restart', { service: 'hello' }))),
      'E_CMD_OPERATOR_REVOKED',
    );
  }
  t.deepEqual(rec.calls, []);
  t.true(
    logs.some((l) => /cannot reload CRLs, keeping the previous ones: .*E_CRL|CRL/.test(l)),
    logs.join('\n'),
  );
});
