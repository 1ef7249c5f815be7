// `mway update --batch 1 --max-fail 0` across three REAL agents in namespace mode, each on a
// disk image of its own with a boot chain (test/fleet/_update-fleet.ts): the rollout sends the
// bundle to one peer at a time and waits for its signed status after the reboot. p1 passes its
// gate, and only then is p2 written; p2's new slot fails its gate (its secure config is damaged
// for that boot), the agent reboots into slot a by itself, and the rollout stops there: p3 is
// never sent a piece, its slot b stays empty. The real C stage 1 picks each slot between boots.
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { gateOutcome } from '../../control/operator/cli/update-rollout.ts';
import { readDiskSlots } from '../../update/index.ts';
import { jsonOut } from '../helpers.ts';
import { updateFleet } from './_update-fleet.ts';

interface Row {
  peer: string;
  outcome: string;
  code?: string;
  message?: string;
  output?: Record<string, unknown>;
}

test('mway update --batch 1 --max-fail 0 waits for each peer’s health gate and stops the rollout at the first failed one', async (t) => {
  t.timeout(240_000);
  const f = await updateFleet(t, { peers: 3, readyWithinMs: 3000 });
  const [p1, p2, p3] = f.machines;
  if (p1 === undefined || p2 === undefined || p3 === undefined) return t.fail('three machines');
  const v2 = await f.bundle('2.0', 1);

  const run = f.mway(
    'update',
    '--group',
    'web',
    v2,
    '--batch',
    '1',
    '--max-fail',
    '0',
    '--gate-timeout',
    '120',
    '--json',
    '--static',
  );
  // The machines' side: each reboot is a stage-1 run and an agent start (the harness's boot).
  t.is(await f.boot(p1), 'b');
  await p1.agent.waitFor(/slot b \(2\.0\) passed its health gate/);
  const secure = join(p2.root.root, 'config', 'secure.json');
  const kept = join(f.dir, 'p2-secure.json');
  t.is(
    await f.boot(p2, {
      before: async () => {
        // p2 is written only after p1's gate passed: its reboot comes after that line.
        t.regex(p1.agent.output(), /slot b \(2\.0\) passed its health gate/);
        await copyFile(secure, kept);
        await writeFile(secure, 'damaged for this boot\n');
      },
    }),
    'b',
  );
  await p2.agent.waitFor(
    /slot b \(2\.0\) failed its health gate: .*secure config did not verify.*rebooting into slot a/,
  );
  t.is(await f.boot(p2, { before: () => copyFile(kept, secure) }), 'a');

  const r = await run;
  t.is(r.exitCode, 1, r.stdout + r.stderr);
  const rows = (jsonOut(r.stdout) as { peers: Row[] }).peers;
  t.deepEqual(
    rows.map((x) => [x.peer, x.outcome, x.code]),
    [
      ['p1', 'ok', undefined],
      ['p2', 'failed', 'E_UPDATE_GATE_FAILED'],
      ['p3', 'skipped', 'E_ROLLOUT_STOPPED'],
    ],
  );
  t.like(rows[0]?.output ?? {}, { slot: 'b', version: '2.0', gate: 'passed' });
  t.regex(rows[1]?.message ?? '', /secure config did not verify/);
  t.regex(rows[2]?.message ?? '', /1 peer\(s\) failed, more than --max-fail 0/);

  // The disks say the same: p1 on b (good), p2 back on a with b marked bad, p3 untouched.
  const d1 = await readDiskSlots(p1.disk);
  t.deepEqual(d1.b.state, { priority: 2, tries: 0, successful: true });
  const d2 = await readDiskSlots(p2.disk);
  t.deepEqual(d2.b.state, { priority: 0, tries: 0, successful: false });
  // a keeps the priority the update gave it: still the only slot that boots.
  t.deepEqual(d2.a.state, { priority: 1, tries: 0, successful: true });
  const d3 = await readDiskSlots(p3.disk);
  t.is(d3.b.label, null, "p3's slot b was never written");
  t.is(p3.agent.proc.exitCode, null, 'p3 never rebooted');

  // One batch of all three: p1 already runs 2.0 and refuses the first piece, so the send stops
  // there; p2 and p3 stored that piece but were never told to install (skipped, not failed).
  const all = await f.mway('update', '--group', 'web', v2, '--batch', '3', '--json', '--static');
  t.is(all.exitCode, 1, all.stdout + all.stderr);
  t.deepEqual(
    (jsonOut(all.stdout) as { peers: Row[] }).peers.map((x) => [x.peer, x.outcome, x.code]),
    [
      ['p1', 'failed', 'E_BUNDLE_DOWNGRADE'],
      ['p2', 'skipped', 'E_ROLLOUT_STOPPED'],
      ['p3', 'skipped', 'E_ROLLOUT_STOPPED'],
    ],
  );
  t.is((await readDiskSlots(p3.disk)).b.label, null, "p3's slot b is still empty");
});

test('gateOutcome() reads a peer’s slots: armed is pending, running it good is passed, fallen back or degraded is failed', (t) => {
  const slot = (s: string, version: string | null, priority: number, tries: number, successful: boolean) => ({
    slot: s,
    version,
    priority,
    tries,
    successful,
    bootable: (priority > 0 && tries > 0) || successful,
  });
  const w = { slot: 'b', version: '2.0' };
  const armed = {
    available: true,
    running: 'a',
    slots: [slot('a', '1.0', 1, 0, true), slot('b', '2.0', 2, 1, false)],
  };
  t.deepEqual(gateOutcome(armed, w), { state: 'pending' });
  const trial = {
    ...armed,
    running: 'b',
    slots: [slot('a', '1.0', 1, 0, true), slot('b', '2.0', 2, 0, false)],
    gate: { state: 'grace' },
  };
  t.deepEqual(gateOutcome(trial, w), { state: 'pending' });
  const good = {
    ...armed,
    running: 'b',
    slots: [slot('a', '1.0', 1, 0, true), slot('b', '2.0', 2, 0, true)],
  };
  t.deepEqual(gateOutcome(good, w), { state: 'passed' });
  const back = {
    ...armed,
    slots: [slot('a', '1.0', 2, 0, true), slot('b', '2.0', 0, 0, false)],
    lastRollback: { slot: 'b', version: '2.0', reason: 'service web failed', at: '' },
  };
  t.deepEqual(gateOutcome(back, w), { state: 'failed', reason: 'service web failed' });
  const degraded = { ...trial, gate: { state: 'failed', reason: 'layer web refused' } };
  t.deepEqual(gateOutcome(degraded, w), { state: 'failed', reason: 'layer web refused' });
  // A stage 1 that spent the try without the agent having said why yet.
  const spent = { ...armed, slots: [slot('a', '1.0', 2, 0, true), slot('b', '2.0', 2, 0, false)] };
  t.is(gateOutcome(spent, w).state, 'failed');
  t.deepEqual(gateOutcome({ available: false }, w), { state: 'pending' });
  t.deepEqual(gateOutcome(undefined, w), { state: 'pending' });
});
