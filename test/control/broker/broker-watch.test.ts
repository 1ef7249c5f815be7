// A watcher that reads more slowly than results arrive (an operator verifying each result of a
// large job, `npm run bench -- fleet --peers 10000`) must get every job event, in order, and keep
// its connection: the broker used to queue every event in the socket and cut the operator off
// with E_BACKPRESSURE past 64 MiB, after which the job looked stalled. Here one peer answers 24
// jobs with ~3.5 MB results (84 MB of events) while the operator's socket is paused.
import test from 'ava';
import { join } from 'node:path';
import { signEnvelope } from '../../../keys/index.ts';
import { tempDir } from '../../helpers.ts';
import { client, command, type Ident, makeFleetPki, startBroker } from '../broker-fixture.ts';

const pki = await makeFleetPki(1);
const p1 = pki.peers[0] as Ident;
const soon = (ms = 120_000) => new Date(Date.now() + ms).toISOString();

test('a slow watcher gets every job event in order and keeps its connection', async (t) => {
  t.timeout(120_000);
  const dir = await tempDir(t);
  const warnings: string[] = [];
  const b = await startBroker(t, pki, {
    dbPath: join(dir, 'broker.db'),
    log: (level, msg) => {
      if (level !== 'info') warnings.push(msg);
    },
  });
  const op = await client(t, pki, pki.operator, b.port, 'operator');
  const peer = await client(t, pki, p1, b.port, 'peer');
  const jobs = Array.from({ length: 24 }, () => command(pki));
  for (const j of jobs) {
    await op.c.request('command-submit', {
      jobId: j.jobId,
      command: j.envelope,
      targets: ['peer-1'],
      expiresAt: soon(),
      watch: true,
    });
  }
  for (const j of jobs) await peer.next((m) => m.kind === 'command-deliver' && m.jobId === j.jobId);
  // The operator stops reading; the peer answers every job with a large signed result.
  op.c.connection.socket.pause();
  const big = 'x'.repeat(3_500_000);
  for (const [i, j] of jobs.entries()) {
    const result = signEnvelope({
      type: 'result',
      payload: { commandId: j.jobId, status: 'ok', output: `${i}:${big}` },
      key: p1.key,
      chain: p1.chain,
    });
    // As an agent answers: one result after another, not 84 MB queued on its own socket at once.
    while (peer.c.connection.socket.writableLength > 8_000_000) await new Promise((r) => setTimeout(r, 20));
    peer.c.send('result', { jobId: j.jobId, result, outcome: 'ok' });
  }
  // Every result is committed while the operator still reads nothing.
  const until = Date.now() + 60_000;
  while (!jobs.every((j) => b.db.counts(j.jobId).ok === 1) && Date.now() < until)
    await new Promise((r) => setTimeout(r, 100));
  t.true(
    jobs.every((j) => b.db.counts(j.jobId).ok === 1),
    'every result committed',
  );
  await new Promise((r) => setTimeout(r, 300));
  t.false(op.c.connection.closed, 'the broker kept the slow watcher connected');
  op.c.connection.socket.resume();
  const events = () => op.got.filter((m) => m.kind === 'job-event');
  const until2 = Date.now() + 60_000;
  while (events().length < jobs.length && !op.c.connection.closed && Date.now() < until2)
    await new Promise((r) => setTimeout(r, 100));
  // Every event once, in the order the results came, each with the peer's whole signed result.
  t.deepEqual(
    events().map((e) => [e.jobId, e.peerId, e.outcome]),
    jobs.map((j) => [j.jobId, 'peer-1', 'ok']),
  );
  for (const [i, e] of events().entries()) {
    const out = (e.result as { payload: { output: string } }).payload.output;
    t.is(out.length, `${i}:`.length + big.length);
    t.true(out.startsWith(`${i}:`));
  }
  t.false(op.c.connection.closed);
  t.deepEqual(
    warnings.filter((w) => w.includes('E_BACKPRESSURE') || w.includes('does not read')),
    [],
  );
  // The connection still serves requests.
  t.is((await op.c.request('ping')).kind, 'reply');
});
