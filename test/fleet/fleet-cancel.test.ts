// Cancelling and watching jobs: `mway job cancel` (by id prefix) holds back a command queued for
// an offline peer, which gets the signed cancellation instead when it returns and refuses the
// original even if a broker delivers it after all (E_CMD_CANCELLED); `mway run` prints each
// peer's line as its result arrives, while slower peers are still running.
import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { startPeerLink } from '../../agent/remote/peer-link.ts';
import { Broker } from '../../control/broker/broker.ts';
import { message } from '../../control/wire/index.ts';
import { tlsContextOptions } from '../../keys/index.ts';
import { type Recorder, recorder } from '../agent/remote/recording-agent.ts';
import { type FleetPki, type Id, makeFleetPki } from '../control/command-fixture.ts';
import { BINS, cli, tempDir, until } from '../helpers.ts';

const pkiP = makeFleetPki();

async function fleet(t: ExecutionContext, p: FleetPki) {
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
  });
  t.teardown(() => broker.close());
  const address = `127.0.0.1:${broker.port}`;
  const start = async (id: Id, rec: Recorder) => {
    const link = await startPeerLink({
      api: rec.api,
      stateDir: join(dir, id.cert.peerId as string),
      log: () => {},
      config: {
        broker: address,
        fleet: 'prod',
        key: id.keyPath,
        cert: id.certPath,
        kemKey: id.kemKeyPath,
        anchors: [p.root.certPath],
        maxBackoffMs: 300,
      },
    });
    t.teardown(() => link.stop());
    await until(`${id.cert.peerId} linked`, () => broker.peers.has(id.cert.peerId as string));
    return link;
  };
  const env = { MWAY_CONFIG_DIR: join(dir, 'mway') };
  const args = ['config', 'init', '--broker', address, '--fleet', 'prod', '--anchor', p.root.certPath];
  return { broker, start, dir, env, args };
}

test('mway job cancel holds back a command for an offline peer, which then refuses it whoever delivers it', async (t) => {
  const p = await pkiP;
  const f = await fleet(t, p);
  const mway = (...a: string[]) => cli('mway', a, { env: f.env, timeout: 60_000 });
  t.is((await mway(...f.args, '--key', p.admin.keyPath, '--cert', p.admin.certPath)).exitCode, 0);
  const r1 = recorder();
  const r2 = recorder();
  await f.start(p.p1, r1);
  const l2 = await f.start(p.p2, r2);
  t.is((await mway('group', 'create', 'web')).exitCode, 0);
  t.is((await mway('group', 'add', 'web', 'p1', 'p2')).exitCode, 0);
  await l2.stop();
  await until('p2 offline', () => !f.broker.peers.has('p2'));

  const sent = await mway('service', '--group', 'web', 'restart', 'hello', '--async');
  const jobId = sent.stdout.trim();
  t.regex(jobId, /^[0-9a-f]{32}$/);
  await until('p1 ran it', () => r1.calls.includes('restart hello'));
  const cancel = await mway('job', 'cancel', jobId.slice(0, 8));
  t.is(cancel.exitCode, 0, cancel.stdout + cancel.stderr);
  t.regex(cancel.stdout, /p2: held back \(offline/);
  t.regex(cancel.stdout, /1 of 1 open deliveries cancelled/);
  const shown = JSON.parse((await mway('job', jobId.slice(0, 6), '--json')).stdout) as {
    peers: Array<{ peer: string; outcome: string; code?: string }>;
  };
  t.deepEqual(
    shown.peers.map((x) => [x.peer, x.outcome, x.code]),
    [
      ['p1', 'ok', undefined],
      ['p2', 'cancelled', 'E_JOB_CANCELLED'],
    ],
  );

  // p2 comes back: it gets the cancellation, not the command.
  await f.start(p.p2, r2);
  await new Promise((r) => setTimeout(r, 1500));
  t.deepEqual(r2.calls, [], 'the cancelled command never ran on p2');
  // A broker that delivers it anyway (a replay, a bug, a hostile relay) gets a signed refusal.
  const original = (f.broker.db.job(jobId) as { command: unknown }).command;
  f.broker.sendToPeer(
    'p2',
    message('command-deliver', {
      jobId,
      command: original,
      expiresAt: (f.broker.db.job(jobId) as { expiresAt: string }).expiresAt,
    }),
  );
  await until('p2 refused it', async () => {
    const j = JSON.parse((await mway('job', jobId, '--json')).stdout) as {
      peers: Array<{ peer: string; code?: string }>;
    };
    return j.peers.find((x) => x.peer === 'p2')?.code === 'E_CMD_CANCELLED';
  });
  t.deepEqual(r2.calls, []);

  // Nothing left to cancel: said so, exit 0; an unknown prefix is E_JOB_UNKNOWN.
  t.regex((await mway('job', 'cancel', jobId)).stdout, /nothing left to cancel/);
  t.regex((await mway('job', 'cancel', 'ffffffff')).stderr, /E_JOB_UNKNOWN/);
});

test('mway run prints each peer as its result arrives, before slower peers finish', async (t) => {
  const p = await pkiP;
  const f = await fleet(t, p);
  t.is(
    (await cli('mway', [...f.args, '--key', p.execOp.keyPath, '--cert', p.execOp.certPath], { env: f.env }))
      .exitCode,
    0,
  );
  const admin = { MWAY_CONFIG_DIR: join(f.dir, 'admin') };
  t.is(
    (await cli('mway', [...f.args, '--key', p.admin.keyPath, '--cert', p.admin.certPath], { env: admin }))
      .exitCode,
    0,
  );
  await f.start(p.p1, recorder());
  await f.start(p.p2, recorder());
  t.is((await cli('mway', ['group', 'create', 'web'], { env: admin })).exitCode, 0);
  t.is((await cli('mway', ['group', 'add', 'web', 'p1', 'p2'], { env: admin })).exitCode, 0);
  const d = join(f.dir, 'race');
  await mkdir(d);
  // Whoever takes the lock first answers at once; the other sleeps, then leaves `done`.
  const script = `mkdir ${d}/lock 2>/dev/null && exit 0; sleep 4; touch ${d}/done`;
  const proc = execa(process.execPath, [BINS.mway, 'run', '--group', 'web', '--', 'sh', '-c', script], {
    env: f.env,
    reject: false,
    buffer: false,
    timeout: 60_000,
  });
  let out = '';
  let doneWhenFirstLine: boolean | undefined;
  proc.stdout?.on('data', (b: Buffer) => {
    out += b.toString();
    if (doneWhenFirstLine === undefined && /\np[12] +ok/.test(out))
      doneWhenFirstLine = access(join(d, 'done')).then(
        () => true,
        () => false,
      ) as unknown as boolean;
  });
  const r = await proc;
  t.is(r.exitCode, 0, out);
  t.false(await doneWhenFirstLine, 'the first line was printed while the slower peer still ran');
  t.regex(out, /^PEER +OUTCOME +DETAIL\n(p[12]) +ok +.*\n(?!\1)p[12] +ok .*\n[\s\S]*2 targeted, 2 succeeded/);
});
