// NATS mode's audit stream against a real 3-node Debian nats-server cluster on 127.0.0.1:
// the servers copy every command and result into MWAY_AUDIT; `mway audit --nats` (a real
// process) reads it as an auditor user, folds the hash chain and verifies it and every envelope.
// Cross-checked against the servers' own view: the entry count is what their stream state says,
// they refuse deleting or purging it, and the auditor may read only that stream. The chain
// survives kill -9 of the audit stream's leader.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { NatsRelay, natsAuthorization, natsUsersFormat } from '../../../control/broker/index.ts';
import {
  AUDIT_STREAM,
  type Audience,
  buildCommand,
  CMD_STREAM,
  connectNats,
  newNkeySeed,
  nkeyPublicKey,
  RES_STREAM,
} from '../../../control/wire/index.ts';
import type { Envelope } from '../../../keys/index.ts';
import { recorder } from '../../agent/remote/recording-agent.ts';
import { cli, jsonOut, tempDir, until } from '../../helpers.ts';
import { makeFleetPki } from '../command-fixture.ts';
import { startNatsCluster } from '../nats-fixture.ts';
import { natsPeerLink } from '../nats-peer-fixture.ts';

const pkiP = makeFleetPki();

test('mway audit --nats folds and verifies the chain of every command and result the servers hold; they refuse deleting it', async (t) => {
  const p = await pkiP;
  const dir = await tempDir(t);
  const seed = async (name: string) => {
    const s = await newNkeySeed();
    const file = join(dir, `${name}.nk`);
    await writeFile(file, `${new TextDecoder().decode(s)}\n`, { mode: 0o600 });
    return { file, pub: await nkeyPublicKey(s) };
  };
  const broker = await seed('broker');
  const p1 = await seed('p1');
  const alice = await seed('alice');
  const users = natsUsersFormat.parse({
    broker: broker.pub,
    peers: { p1: p1.pub },
    auditors: { alice: alice.pub },
  });
  const cluster = await startNatsCluster(t, 3, { authorization: natsAuthorization(users) });
  const relay = await NatsRelay.open({ servers: cluster.urls, nkey: broker.file });
  t.teardown(() => relay.close());
  await relay.ensureStreams(3);
  const rec = recorder();
  await natsPeerLink(
    t,
    p,
    p.p1,
    { servers: cluster.urls, nkey: p1.file },
    { rec, stateDir: join(dir, 'p1') },
  );

  let seq = 0;
  const audience: Audience = { fleet: 'prod', target: 'peer:p1', groups: [], peers: ['p1'] };
  const command = (service: string) =>
    buildCommand({
      action: 'service.restart',
      args: { service },
      audience,
      seq: ++seq,
      key: p.admin.key,
      chain: p.admin.chain,
    });
  const expires = () => new Date(Date.now() + 600_000).toISOString();
  const run = async (jobId: string, env: Envelope) => {
    await relay.deliver('p1', jobId, env, expires());
    t.truthy(await relay.answer('p1', jobId, 60_000), `answer to ${jobId}`);
  };
  const first = command('a');
  await run('job-1', first);
  await run('job-2', command('b'));
  await run('job-3', first); // replayed: refused by the peer, and audited like any answer

  const bnc = await connectNats({
    servers: cluster.urls,
    who: { role: 'broker' },
    nkey: broker.file,
    name: 'check',
  });
  t.teardown(() => bnc.close());
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const jsm = await jetstreamManager(bnc);
  const count = async (s: string) => (await jsm.streams.info(s)).state.messages;
  const held = async () => (await count(CMD_STREAM)) + (await count(RES_STREAM));
  await until(
    'the audit stream holds both streams',
    async () => (await count(AUDIT_STREAM)) === (await held()),
  );

  const cfgDir = join(dir, 'mway');
  await mkdir(cfgDir);
  await writeFile(
    join(cfgDir, 'config.json'),
    JSON.stringify({
      broker: '127.0.0.1:1',
      fleet: 'prod',
      key: p.admin.keyPath,
      cert: p.admin.certPath,
      anchors: [p.root.certPath],
      nats: { servers: cluster.urls, name: 'alice', nkey: alice.file },
    }),
  );
  const mway = (...args: string[]) =>
    cli('mway', ['audit', '--nats', ...args], { env: { MWAY_CONFIG_DIR: cfgDir } });
  const v = await mway('--verify', '--json');
  t.is(v.exitCode, 0, v.stderr);
  const report = jsonOut(v.stdout) as {
    entries: number;
    head: string;
    report: { envelopesVerified: number };
  };
  t.is(report.entries, 6, 'three commands and three answers');
  t.is(report.report.envelopesVerified, 6, 'every command and result envelope verified');
  const list = jsonOut((await mway('--json')).stdout) as Array<{
    seq: number;
    kind: string;
    actor: string;
    data: { jobId?: string };
  }>;
  t.deepEqual(
    list.map((e) => e.seq),
    [1, 2, 3, 4, 5, 6],
  );
  t.deepEqual(list.map((e) => `${e.kind} ${e.data.jobId} ${e.actor}`).sort(), [
    'command job-1 nats:mway.cmd.peer.p1',
    'command job-2 nats:mway.cmd.peer.p1',
    'command job-3 nats:mway.cmd.peer.p1',
    'result job-1 nats:mway.res.p1.job-1',
    'result job-2 nats:mway.res.p1.job-2',
    'result job-3 nats:mway.res.p1.job-3',
  ]);
  // The head an operator recorded is checked; another one is E_AUDIT_BROKEN.
  t.is((await mway('--verify', '--head', report.head)).exitCode, 0);
  const wrong = await mway('--verify', '--head', '0'.repeat(64));
  t.is(wrong.exitCode, 1);
  t.regex(wrong.stderr, /E_AUDIT_BROKEN/);

  // The servers refuse deleting or purging the audit stream (deny_delete, deny_purge), even to
  // the broker's user, which administers the streams.
  await t.throwsAsync(jsm.streams.deleteMessage(AUDIT_STREAM, 1), { message: /delete|not allowed|denied/i });
  await t.throwsAsync(jsm.streams.purge(AUDIT_STREAM), { message: /purge|not allowed|denied/i });
  // The auditor reads the audit stream only: the commands stream is refused to it.
  const anc = await connectNats({
    servers: cluster.urls,
    who: { role: 'auditor', name: 'alice' },
    nkey: alice.file,
    name: 'alice',
  });
  t.teardown(() => anc.close());
  const ajsm = await jetstreamManager(anc, { checkAPI: false });
  await t.throwsAsync(ajsm.streams.getMessage(CMD_STREAM, { seq: 1 }), { message: /permissions violation/i });

  // kill -9 of the audit stream's leader: the next command and answer are copied on the new
  // leader and the chain, recomputed, extends the recorded head.
  const leader = await cluster.streamLeader(AUDIT_STREAM);
  t.log(`kill -9 ${leader.name} (leader of ${AUDIT_STREAM})`);
  await cluster.kill(leader, 'SIGKILL');
  await run('job-4', command('c'));
  await until(
    'the audit stream catches up after the failover',
    async () => (await count(AUDIT_STREAM).catch(() => -1)) === (await held().catch(() => -2)),
    60_000,
  );
  const after = await mway('--verify', '--json');
  t.is(after.exitCode, 0, after.stderr);
  const r2 = jsonOut(after.stdout) as { entries: number; report: { envelopesVerified: number } };
  t.is(r2.entries, 8);
  t.is(r2.report.envelopesVerified, 8);
  const again = jsonOut((await mway('--json')).stdout) as Array<{ hash: string; seq: number }>;
  t.is(again[5]?.hash, report.head, 'the first six entries are unchanged');
  t.deepEqual(rec.calls, ['restart a', 'restart b', 'restart c']);
});
