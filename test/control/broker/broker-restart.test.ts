import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { BINS, cli, jsonOut, tempDir } from '../../helpers.ts';
import { client, command, type FleetPki, type Ident, makeFleetPki, result } from '../broker-fixture.ts';

const pki = await makeFleetPki(3);
const [p1, p2, p3] = pki.peers as [Ident, Ident, Ident];

async function writeConfig(dir: string, p: FleetPki): Promise<string> {
  const path = join(dir, 'broker.json');
  await writeFile(
    path,
    JSON.stringify({
      listen: '127.0.0.1:0',
      key: p.broker.keyPath,
      certificate: p.broker.certPath,
      anchors: [p.root.certPath],
      database: 'state/broker.db',
      mdns: { enabled: false },
      expirySweepMs: 100,
    }),
  );
  return path;
}

/** Starts milkywaysrvd as a real process and returns it with the port it printed. */
async function daemon(t: ExecutionContext, config: string) {
  const proc = execa(process.execPath, [BINS.milkywaysrvd, '--config', config, '--json'], {
    reject: false,
    timeout: 120_000,
    buffer: false,
  });
  t.teardown(() => {
    proc.kill('SIGKILL');
  });
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('milkywaysrvd did not start in 20 s')), 20_000);
    proc.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) {
        clearTimeout(timer);
        resolve(buf.slice(0, i));
      }
    });
    proc.stderr?.on('data', () => {});
    void proc.then((r) => {
      clearTimeout(timer);
      reject(new Error(`milkywaysrvd exited ${String(r.exitCode)}`));
    });
  });
  const info = jsonOut(line) as { listening: string; fingerprint: string };
  return { proc, port: Number(info.listening.split(':').pop()) };
}

test('milkywaysrvd killed with SIGKILL mid-job loses nothing; redelivery is only to peers without a result; audit verifies', async (t) => {
  const dir = await tempDir(t);
  const config = await writeConfig(dir, pki);
  const a = await daemon(t, config);
  const op = await client(t, pki, pki.operator, a.port, 'operator');
  const c1 = await client(t, pki, p1, a.port, 'peer');
  const c2 = await client(t, pki, p2, a.port, 'peer');
  const cmd = command(pki);
  await op.c.request('command-submit', {
    jobId: cmd.jobId,
    command: cmd.envelope,
    targets: ['peer-1', 'peer-2', 'peer-3'],
    expiresAt: new Date(Date.now() + 120_000).toISOString(),
  });
  await c1.next((m) => m.kind === 'command-deliver');
  await c2.next((m) => m.kind === 'command-deliver');
  c1.c.send('result', { jobId: cmd.jobId, result: result(p1, cmd.jobId), outcome: 'ok' });
  await c1.c.request('ping'); // the result is committed before the ping is answered
  a.proc.kill('SIGKILL');
  await a.proc;
  await c2.c.closed;

  const b = await daemon(t, config);
  const r1 = await client(t, pki, p1, b.port, 'peer');
  const r2 = await client(t, pki, p2, b.port, 'peer');
  const r3 = await client(t, pki, p3, b.port, 'peer');
  const d2 = await r2.next((m) => m.kind === 'command-deliver');
  const d3 = await r3.next((m) => m.kind === 'command-deliver');
  t.is(d2.jobId, cmd.jobId);
  t.is(d3.jobId, cmd.jobId);
  await r1.c.request('ping');
  t.false(
    r1.got.some((m) => m.kind === 'command-deliver'),
    'peer-1 already answered: no redelivery',
  );
  r2.c.send('result', { jobId: cmd.jobId, result: result(p2, cmd.jobId), outcome: 'ok' });
  r3.c.send('result', { jobId: cmd.jobId, result: result(p3, cmd.jobId), outcome: 'ok' });
  await r2.c.request('ping');
  await r3.c.request('ping');
  const op2 = await client(t, pki, pki.operator, b.port, 'operator');
  const job = (await op2.c.request('job-get', { jobId: cmd.jobId })).job as {
    succeeded: number;
    state: string;
    peers: Array<{ peerId: string; sent: number }>;
  };
  t.is(job.succeeded, 3);
  t.is(job.state, 'finished');
  t.deepEqual(
    job.peers.map((p) => [p.peerId, p.sent]),
    [
      ['peer-1', 1],
      ['peer-2', 2],
      ['peer-3', 1],
    ],
  );

  const ok = await cli('milkywaysrvd', ['audit', '--config', config, '--verify', '--json']);
  t.is(ok.exitCode, 0, ok.stderr);
  t.like(jsonOut(ok.stdout), { entries: 4, envelopesVerified: 4 });
  // Editing one stored entry (here: who ran the command) breaks the chain.
  const db = new DatabaseSync(join(dir, 'state/broker.db'));
  db.prepare("UPDATE audit SET actor = 'operator:someone-else' WHERE seq = 1").run();
  db.close();
  const bad = await cli('milkywaysrvd', ['audit', '--config', config, '--verify', '--json']);
  t.is(bad.exitCode, 1);
  t.like(jsonOut(bad.stdout), { ok: false, error: { code: 'E_AUDIT_BROKEN' } });
});
