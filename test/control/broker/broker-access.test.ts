import test from 'ava';
import { join } from 'node:path';
import { connectBroker } from '../../../control/wire/transport.ts';
import { issueCrl, signEnvelope } from '../../../keys/index.ts';
import { tempDir } from '../../helpers.ts';
import { client, type Ident, makeFleetPki, startBroker, tlsOf } from '../broker-fixture.ts';

const pki = await makeFleetPki(2);
const [p1, p2] = pki.peers as [Ident, Ident];
const code = (e: unknown) => (e as { code?: string }).code;

function membership(group: string, peerId: string) {
  return signEnvelope({
    type: 'membership',
    payload: { group, peerId },
    key: pki.operator.key,
    chain: pki.operator.chain,
  });
}

test('a peer whose certificate is revoked by CRL is refused at hello with E_IDENTITY_REVOKED', async (t) => {
  const dir = await tempDir(t);
  const crl = await issueCrl({
    issuerKey: pki.root.key,
    issuerCert: pki.root.cert,
    serials: [p2.cert.serial],
  });
  const b = await startBroker(t, pki, { dbPath: join(dir, 'broker.db'), crls: [crl] });
  const ok = await client(t, pki, p1, b.port, 'peer');
  t.is(ok.c.welcome.identity, 'peer-1');
  const e = await t.throwsAsync(
    connectBroker({ address: `127.0.0.1:${b.port}`, tls: tlsOf(pki, p2), role: 'peer' }),
  );
  t.is(code(e), 'E_IDENTITY_REVOKED');
  // A certificate of one role cannot claim the other.
  const e2 = await t.throwsAsync(
    connectBroker({ address: `127.0.0.1:${b.port}`, tls: tlsOf(pki, p1), role: 'operator' }),
  );
  t.is(code(e2), 'E_FORBIDDEN');
});

test('memberships: relayed to online peers, held for offline ones until acknowledged; groups list members', async (t) => {
  const dir = await tempDir(t);
  const b = await startBroker(t, pki, { dbPath: join(dir, 'broker.db') });
  const op = await client(t, pki, pki.operator, b.port, 'operator');
  t.is(
    code(
      await t.throwsAsync(
        op.c.request('membership-put', {
          group: 'web',
          peerId: 'peer-1',
          membership: membership('web', 'peer-1'),
        }),
      ),
    ),
    'E_GROUP_UNKNOWN',
  );
  t.true((await op.c.request('group-create', { group: 'web' })).created);
  t.false((await op.c.request('group-create', { group: 'web' })).created);
  const a = await client(t, pki, p1, b.port, 'peer');
  const m1 = membership('web', 'peer-1');
  await op.c.request('membership-put', { group: 'web', peerId: 'peer-1', membership: m1 });
  // A peer the broker never saw is refused; peer-2 connected once, so it is known while offline.
  t.is(
    code(
      await t.throwsAsync(
        op.c.request('membership-put', {
          group: 'web',
          peerId: 'peer-3',
          membership: membership('web', 'peer-3'),
        }),
      ),
    ),
    'E_PEER_UNKNOWN',
  );
  const once = await client(t, pki, p2, b.port, 'peer');
  once.c.close();
  await once.c.closed;
  await op.c.request('membership-put', {
    group: 'web',
    peerId: 'peer-2',
    membership: membership('web', 'peer-2'),
  });
  const d = await a.next((m) => m.kind === 'membership-deliver');
  t.like(d, { group: 'web', op: 'put' });
  t.deepEqual(d.membership, m1);
  a.c.send('membership-ack', { group: 'web', op: 'put' });
  await a.c.request('ping');
  // peer-2 was offline: it gets its membership on connect, and again until it acknowledges.
  const c2 = await client(t, pki, p2, b.port, 'peer');
  await c2.next((m) => m.kind === 'membership-deliver');
  c2.c.close();
  await c2.c.closed;
  const c2b = await client(t, pki, p2, b.port, 'peer');
  await c2b.next((m) => m.kind === 'membership-deliver');
  c2b.c.send('membership-ack', { group: 'web', op: 'put' });
  await c2b.c.request('ping');
  // peer-1 acknowledged: a reconnect brings nothing.
  a.c.close();
  await a.c.closed;
  const a2 = await client(t, pki, p1, b.port, 'peer');
  await a2.c.request('ping');
  t.false(a2.got.some((m) => m.kind === 'membership-deliver'));
  const groups = (await op.c.request('group-list')).groups as Array<{ group: string; members: string[] }>;
  t.deepEqual(
    groups.map((g) => [g.group, g.members]),
    [['web', ['peer-1', 'peer-2']]],
  );
  // A signed status is stored as the peer's last status.
  const status = signEnvelope({ type: 'status', payload: { health: 'ok' }, key: p1.key, chain: p1.chain });
  a2.c.send('status', { status });
  await a2.c.request('ping');
  const peers = (await op.c.request('peers-list')).peers as Array<{
    peerId: string;
    status: unknown;
    groups: string[];
  }>;
  t.deepEqual(peers.find((p) => p.peerId === 'peer-1')?.status, status);
  t.deepEqual(peers.find((p) => p.peerId === 'peer-1')?.groups, ['web']);
  await op.c.request('membership-delete', { group: 'web', peerId: 'peer-1' });
  const del = await a2.next((m) => m.kind === 'membership-deliver');
  t.like(del, { op: 'delete', group: 'web' });
  t.is(code(await t.throwsAsync(op.c.request('group-delete', { group: 'nope' }))), 'E_GROUP_UNKNOWN');
});
