// Per-operator sequence numbers: a peer admits each number from one operator certificate at
// most once (E_CMD_SEQ_REUSED) and refuses one more than SEQ_WINDOW below the highest it saw
// (E_CMD_SEQ_STALE), while commands arriving out of order within the window still pass. The
// window is persisted with the replay cache and outlives the command ids. `mway`'s counter
// hands out distinct, increasing numbers even to concurrent processes.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { admitCommand, type CheckContext, checkCommand } from '../../../agent/remote/command-check.ts';
import { type Audience, buildCommand } from '../../../control/wire/command.ts';
import { MembershipStore } from '../../../agent/remote/membership-store.ts';
import { signMembership } from '../../../control/wire/membership.ts';
import { nextOperatorSeq, seqFile } from '../../../control/operator/operator-seq.ts';
import { PeerExecutor } from '../../../agent/remote/peer-executor.ts';
import { verifyResult } from '../../../control/wire/result.ts';
import { ReplayCache, SEQ_WINDOW } from '../../../agent/remote/replay-cache.ts';
import { type Envelope, readKemPrivateKey } from '../../../keys/index.ts';
import { tempDir } from '../../helpers.ts';
import { codeOf, codeOfAsync, type FleetPki, type Id, makeFleetPki } from '../../control/command-fixture.ts';
import { recorder } from './recording-agent.ts';

const pkiP = makeFleetPki();
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000 + 3_600_000);
const web: Audience = { fleet: 'prod', target: 'group:web', groups: ['web'], peers: ['p1'] };

function cmd(by: Id, seq: number): Envelope {
  return buildCommand({
    action: 'status',
    audience: web,
    seq,
    key: by.key,
    chain: by.chain,
    now: NOW,
  });
}

async function context(t: Parameters<typeof tempDir>[0], p: FleetPki, dir?: string): Promise<CheckContext> {
  const d = dir ?? (await tempDir(t));
  const store = new MembershipStore(d);
  await store.load();
  const base = { anchors: [p.root.cert], crls: [p.crl], fleet: 'prod', peer: 'p1' };
  await store.add(
    signMembership({
      fleet: 'prod',
      group: 'web',
      peer: 'p1',
      member: true,
      key: p.admin.key,
      chain: p.admin.chain,
      now: NOW,
    }),
    { ...base, at: NOW },
  );
  const replay = new ReplayCache(d);
  await replay.load(NOW);
  return {
    anchors: [p.root.cert],
    crls: [p.crl],
    fleet: 'prod',
    peerId: 'p1',
    peerChain: p.p1.chain,
    groups: store.groups({ ...base, at: NOW }),
    replay,
    now: NOW,
  };
}

test('a sequence number used once is refused the second time with E_CMD_SEQ_REUSED', async (t) => {
  const p = await pkiP;
  const ctx = await context(t, p);
  await admitCommand(cmd(p.op, 7), ctx);
  // A new command id (not a replay of the envelope) with the same number.
  const again = cmd(p.op, 7);
  t.is(
    codeOf(() => checkCommand(again, ctx)),
    'E_CMD_SEQ_REUSED',
  );
  t.is(await codeOfAsync(() => admitCommand(again, ctx)), 'E_CMD_SEQ_REUSED');
  // The same envelope delivered again is still a replay (its original answer rides along).
  const first = cmd(p.op, 8);
  await admitCommand(first, ctx);
  t.is(await codeOfAsync(() => admitCommand(first, ctx)), 'E_CMD_REPLAYED');
});

test('out-of-order delivery within the window passes; each number still only once', async (t) => {
  const p = await pkiP;
  const ctx = await context(t, p);
  for (const seq of [100, 50, 99, 1, 101, 60]) {
    t.is(await codeOfAsync(() => admitCommand(cmd(p.op, seq), ctx)), 'no error', `seq ${seq}`);
  }
  for (const seq of [50, 99, 1, 101]) {
    t.is(await codeOfAsync(() => admitCommand(cmd(p.op, seq), ctx)), 'E_CMD_SEQ_REUSED', `seq ${seq}`);
  }
  t.is(ctx.replay.highestSeq(p.op.cert.fingerprint), 101);
});

test(`a number more than ${SEQ_WINDOW} below the highest is refused as E_CMD_SEQ_STALE`, async (t) => {
  const p = await pkiP;
  const ctx = await context(t, p);
  const high = 1_000_000;
  await admitCommand(cmd(p.op, high), ctx);
  t.is(await codeOfAsync(() => admitCommand(cmd(p.op, high - SEQ_WINDOW - 1), ctx)), 'E_CMD_SEQ_STALE');
  t.is(
    codeOf(() => checkCommand(cmd(p.op, 3), ctx)),
    'E_CMD_SEQ_STALE',
  );
  // Exactly at the window's edge still passes (an offline peer catching up on a batch).
  t.is(await codeOfAsync(() => admitCommand(cmd(p.op, high - SEQ_WINDOW), ctx)), 'no error');
  // Moving the highest forward turns what was inside the window stale.
  await admitCommand(cmd(p.op, high + 10), ctx);
  t.is(await codeOfAsync(() => admitCommand(cmd(p.op, high - SEQ_WINDOW + 5), ctx)), 'E_CMD_SEQ_STALE');
  t.is(await codeOfAsync(() => admitCommand(cmd(p.op, high - SEQ_WINDOW + 10), ctx)), 'no error');
});

test('each operator certificate has its own sequence', async (t) => {
  const p = await pkiP;
  const ctx = await context(t, p);
  await admitCommand(cmd(p.op, 5), ctx);
  t.is(await codeOfAsync(() => admitCommand(cmd(p.admin, 5), ctx)), 'no error');
  t.is(await codeOfAsync(() => admitCommand(cmd(p.admin, 5), ctx)), 'E_CMD_SEQ_REUSED');
});

test('the window is persisted and outlives the command ids in the replay cache', async (t) => {
  const p = await pkiP;
  const dir = await tempDir(t);
  const ctx = await context(t, p, dir);
  await admitCommand(cmd(p.op, 9000), ctx);
  await admitCommand(cmd(p.op, 8000), ctx);
  // Reloaded after every command expired: no id is left, the window is.
  const later = new ReplayCache(dir);
  await later.load(new Date(NOW.getTime() + 2 * 3_600_000));
  t.is(later.size, 0);
  t.is(later.checkSeq({ operator: p.op.cert.fingerprint, seq: 8000 }), 'reused');
  t.is(later.checkSeq({ operator: p.op.cert.fingerprint, seq: 9000 }), 'reused');
  t.is(later.checkSeq({ operator: p.op.cert.fingerprint, seq: 8001 }), 'ok');
  t.is(later.checkSeq({ operator: p.op.cert.fingerprint, seq: 9000 - SEQ_WINDOW - 1 }), 'stale');
  // The compacted file holds the window line; a second reload reads it back the same.
  t.regex(await readFile(join(dir, 'replay-cache.log'), 'utf8'), /"h":9000/);
  const again = new ReplayCache(dir);
  await again.load(new Date(NOW.getTime() + 3 * 3_600_000));
  t.is(again.checkSeq({ operator: p.op.cert.fingerprint, seq: 8000 }), 'reused');
  t.is(again.highestSeq(p.op.cert.fingerprint), 9000);
  const ctx2 = { ...ctx, replay: again };
  t.is(await codeOfAsync(() => admitCommand(cmd(p.op, 8000), ctx2)), 'E_CMD_SEQ_REUSED');
});

test('two concurrent commands with one sequence number: exactly one is admitted', async (t) => {
  const p = await pkiP;
  const ctx = await context(t, p);
  const r = await Promise.allSettled([
    admitCommand(cmd(p.op, 42), ctx),
    admitCommand(cmd(p.op, 42), ctx),
    admitCommand(cmd(p.op, 42), ctx),
  ]);
  t.is(r.filter((x) => x.status === 'fulfilled').length, 1);
  t.deepEqual(
    r.filter((x) => x.status === 'rejected').map((x) => (x.reason as { code: string }).code),
    ['E_CMD_SEQ_REUSED', 'E_CMD_SEQ_REUSED'],
  );
});

test('mway numbers: start at the clock, then +1, distinct across concurrent allocations', async (t) => {
  const dir = await tempDir(t);
  const fp = 'ab'.repeat(32);
  const before = Date.now();
  const first = await nextOperatorSeq(dir, fp);
  t.true(first >= before && first <= Date.now());
  t.is(await nextOperatorSeq(dir, fp), first + 1);
  const many = await Promise.all(Array.from({ length: 25 }, () => nextOperatorSeq(dir, fp)));
  t.is(new Set(many).size, 25);
  t.deepEqual(
    [...many].sort((a, b) => a - b),
    Array.from({ length: 25 }, (_, i) => first + 2 + i),
  );
  // A corrupt counter restarts above anything used, never at a low number.
  await writeFile(seqFile(dir, fp), '{not json');
  t.true((await nextOperatorSeq(dir, fp)) >= before);
});

test('through the peer executor: a reused number gets a signed refusal and reaches nothing, also after a restart', async (t) => {
  const p = await pkiP;
  const stateDir = await tempDir(t);
  const rec = recorder();
  const make = async () => {
    const ex = new PeerExecutor({
      api: rec.api,
      stateDir,
      log: () => {},
      identity: {
        fleet: 'prod',
        peerId: 'p1',
        key: p.p1.key,
        chain: p.p1.chain,
        kemPrivateKey: await readKemPrivateKey(p.p1.kemKeyPath as string),
        anchors: [p.root.cert],
        crls: [p.crl],
      },
    });
    await ex.load();
    return ex;
  };
  const ex = await make();
  t.true(
    (
      await ex.membership(
        signMembership({
          fleet: 'prod',
          group: 'web',
          peer: 'p1',
          member: true,
          key: p.op.key,
          chain: p.op.chain,
        }),
        'web',
      )
    ).ok,
  );
  const restart = (seq: number) =>
    buildCommand({
      action: 'service.restart',
      args: { service: 'hello' },
      audience: web,
      seq,
      key: p.op.key,
      chain: p.op.chain,
    });
  const ok = await ex.command(restart(500));
  t.is(verifyResult(ok.result, { anchors: [p.root.cert] }).payload.status, 'ok');
  t.deepEqual(rec.calls, ['restart hello']);
  // The agent restarts (state reloaded from disk): the number is still taken.
  const ex2 = await make();
  const again = verifyResult((await ex2.command(restart(500))).result, { anchors: [p.root.cert] }).payload;
  t.is(again.status, 'refused');
  t.is(again.code, 'E_CMD_SEQ_REUSED');
  const ahead = verifyResult((await ex2.command(restart(500 + SEQ_WINDOW + 1))).result, {
    anchors: [p.root.cert],
  }).payload;
  t.is(ahead.status, 'ok');
  const old = verifyResult((await ex2.command(restart(499))).result, { anchors: [p.root.cert] }).payload;
  t.is(old.code, 'E_CMD_SEQ_STALE');
  t.deepEqual(rec.calls, ['restart hello', 'restart hello']);
});
