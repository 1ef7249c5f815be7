import test from 'ava';
import { join } from 'node:path';
import { verifyAuditChain } from '../../../control/wire/audit-chain.ts';
import { tempDir } from '../../helpers.ts';
import { client, command, type Ident, makeFleetPki, result, startBroker } from '../broker-fixture.ts';

const pki = await makeFleetPki(3);
const [p1, p2, p3] = pki.peers as [Ident, Ident, Ident];
const code = (e: unknown) => (e as { code?: string }).code;
const soon = (ms = 60_000) => new Date(Date.now() + ms).toISOString();

test('a command reaches online peers now and offline peers on reconnect; results stream to the operator', async (t) => {
  const dir = await tempDir(t);
  const b = await startBroker(t, pki, { dbPath: join(dir, 'broker.db') });
  const op = await client(t, pki, pki.operator, b.port, 'operator');
  t.is(op.c.welcome.role, 'operator');
  const a = await client(t, pki, p1, b.port, 'peer');
  t.is(a.c.welcome.identity, 'peer-1');
  const cmd = command(pki);
  const r = await op.c.request('command-submit', {
    jobId: cmd.jobId,
    command: cmd.envelope,
    targets: ['peer-1', 'peer-2'],
    expiresAt: soon(),
    watch: true,
  });
  t.deepEqual(r.unknown, ['peer-2']);
  const d = await a.next((m) => m.kind === 'command-deliver');
  t.is(d.jobId, cmd.jobId);
  t.deepEqual(d.command, cmd.envelope);
  a.c.send('command-ack', { jobId: cmd.jobId });
  const r1 = result(p1, cmd.jobId);
  a.c.send('result', { jobId: cmd.jobId, result: r1, outcome: 'ok' });
  const ev = await op.next((m) => m.kind === 'job-event');
  t.is(ev.peerId, 'peer-1');
  t.is(ev.outcome, 'ok');
  // peer-2 was offline: it gets the command when it connects.
  const pending = await op.c.request('pending-list', {});
  t.deepEqual(
    (pending.pending as Array<{ peerId: string }>).map((p) => p.peerId),
    ['peer-2'],
  );
  const c2 = await client(t, pki, p2, b.port, 'peer');
  const d2 = await c2.next((m) => m.kind === 'command-deliver');
  t.is(d2.jobId, cmd.jobId);
  const r2 = result(p2, cmd.jobId);
  c2.c.send('result', { jobId: cmd.jobId, result: r2, outcome: 'failed' });
  await op.next((m) => m.kind === 'job-event' && m.peerId === 'peer-2');
  const job = (await op.c.request('job-get', { jobId: cmd.jobId })).job as Record<string, unknown>;
  t.like(job, { targeted: 2, succeeded: 1, failed: 1, pending: 0, state: 'finished' });
  // Each peer's signed result comes back as it sent it (stored once, in its audit entry).
  t.deepEqual(
    (job.peers as Array<{ peerId: string; outcome: string; result: unknown }>).map((p) => [
      p.peerId,
      p.outcome,
      p.result,
    ]),
    [
      ['peer-1', 'ok', r1],
      ['peer-2', 'failed', r2],
    ],
  );
  // A duplicate result (e.g. after redelivery) changes nothing.
  a.c.send('result', { jobId: cmd.jobId, result: result(p1, cmd.jobId), outcome: 'failed' });
  await a.c.request('ping');
  const again = (await op.c.request('job-get', { jobId: cmd.jobId })).job as Record<string, unknown>;
  t.like(again, { succeeded: 1, failed: 1 });
  const peers = (await op.c.request('peers-list')).peers as Array<{ peerId: string; online: boolean }>;
  t.deepEqual(
    peers.map((p) => [p.peerId, p.online]),
    [
      ['peer-1', true],
      ['peer-2', true],
    ],
  );
  // The audit chain holds the command and both results and verifies offline, signatures included.
  const audit = await op.c.request('audit-get', {});
  const entries = audit.entries as Parameters<typeof verifyAuditChain>[0];
  t.deepEqual(
    entries.map((e) => e.kind),
    ['command', 'result', 'result'],
  );
  const rep = verifyAuditChain(entries, { anchors: pki.anchors, head: audit.head as string });
  t.is(rep.envelopesVerified, 3);
});

test('expired commands are never delivered; a peer may not submit; a stale expiry is refused', async (t) => {
  const dir = await tempDir(t);
  const b = await startBroker(t, pki, { dbPath: join(dir, 'broker.db') });
  const op = await client(t, pki, pki.operator, b.port, 'operator');
  const cmd = command(pki);
  await op.c.request('command-submit', {
    jobId: cmd.jobId,
    command: cmd.envelope,
    targets: ['peer-3'],
    expiresAt: soon(300),
    watch: true,
  });
  const ev = await op.next((m) => m.kind === 'job-event');
  t.is(ev.state, 'expired');
  const c3 = await client(t, pki, p3, b.port, 'peer');
  await c3.c.request('ping');
  await new Promise((r) => setTimeout(r, 200));
  t.false(c3.got.some((m) => m.kind === 'command-deliver'));
  const e1 = await t.throwsAsync(
    c3.c.request('command-submit', {
      jobId: cmd.jobId,
      command: cmd.envelope,
      targets: ['peer-3'],
      expiresAt: soon(),
    }),
  );
  t.is((e1 as { code?: string }).code, 'E_FORBIDDEN');
  const late = command(pki);
  const e2 = await t.throwsAsync(
    op.c.request('command-submit', {
      jobId: late.jobId,
      command: late.envelope,
      targets: ['peer-3'],
      expiresAt: soon(-1000),
    }),
  );
  t.is((e2 as { code?: string }).code, 'E_COMMAND_EXPIRED');
});

test('batch window: one peer at a time, and the rollout stops past the failure budget', async (t) => {
  const dir = await tempDir(t);
  const b = await startBroker(t, pki, { dbPath: join(dir, 'broker.db') });
  const op = await client(t, pki, pki.operator, b.port, 'operator');
  const peers = [
    await client(t, pki, p1, b.port, 'peer'),
    await client(t, pki, p2, b.port, 'peer'),
    await client(t, pki, p3, b.port, 'peer'),
  ];
  const cmd = command(pki);
  await op.c.request('command-submit', {
    jobId: cmd.jobId,
    command: cmd.envelope,
    targets: ['peer-1', 'peer-2', 'peer-3'],
    expiresAt: soon(),
    batch: 1,
    maxFail: 0,
    watch: true,
  });
  await peers[0]?.next((m) => m.kind === 'command-deliver');
  await op.c.request('ping');
  t.false(peers[1]?.got.some((m) => m.kind === 'command-deliver'));
  peers[0]?.c.send('result', { jobId: cmd.jobId, result: result(p1, cmd.jobId), outcome: 'ok' });
  await peers[1]?.next((m) => m.kind === 'command-deliver');
  peers[1]?.c.send('result', { jobId: cmd.jobId, result: result(p2, cmd.jobId), outcome: 'failed' });
  const skipped = await op.next((m) => m.kind === 'job-event' && m.state === 'skipped');
  t.is(skipped.peerId, 'peer-3');
  const job = (await op.c.request('job-get', { jobId: cmd.jobId })).job as Record<string, unknown>;
  t.like(job, { succeeded: 1, failed: 1, skipped: 1, state: 'finished' });
  t.false(peers[2]?.got.some((m) => m.kind === 'command-deliver'));
});

test('outgoing hook sees every message and can drop one (for hostile-broker tests)', async (t) => {
  const dir = await tempDir(t);
  const seen: string[] = [];
  const b = await startBroker(t, pki, {
    dbPath: join(dir, 'broker.db'),
    hooks: {
      outgoing: ({ to, message }) => {
        seen.push(`${to}:${message.kind}`);
        return message.kind === 'command-deliver' ? [] : [message];
      },
    },
  });
  const op = await client(t, pki, pki.operator, b.port, 'operator');
  const a = await client(t, pki, p1, b.port, 'peer');
  const cmd = command(pki);
  await op.c.request('command-submit', {
    jobId: cmd.jobId,
    command: cmd.envelope,
    targets: ['peer-1'],
    expiresAt: soon(),
  });
  await a.c.request('ping');
  t.true(seen.includes('peer:command-deliver'));
  t.false(a.got.some((m) => m.kind === 'command-deliver'));
});

test('a client sending a malformed frame is cut off; the broker keeps serving the others', async (t) => {
  const dir = await tempDir(t);
  const b = await startBroker(t, pki, { dbPath: join(dir, 'broker.db') });
  const op = await client(t, pki, pki.operator, b.port, 'operator');
  const bad = await client(t, pki, p1, b.port, 'peer');
  const body = Buffer.from('{"v":1,"kind":"result","jobId":');
  const h = Buffer.alloc(4);
  h.writeUInt32BE(body.length, 0);
  bad.c.connection.socket.write(Buffer.concat([h, body]));
  const reason = await bad.c.closed;
  t.not(reason, new Error('never'));
  t.true(bad.c.connection.closed);
  // Unknown kinds and wrong-role kinds get an error reply without closing.
  t.is(code(await t.throwsAsync(op.c.request('status', { status: {} }))), 'E_PROTOCOL');
  t.is(
    code(
      await t.throwsAsync(
        op.c.request('result', {
          jobId: 'x',
          result: { v: 1, type: 'result', payload: {}, signatures: [] },
          outcome: 'ok',
        }),
      ),
    ),
    'E_FORBIDDEN',
  );
  t.truthy((await op.c.request('ping')).time);
});
