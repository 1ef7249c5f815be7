// `mway update --rollback` and `mway update --cancel` with a REAL agent in namespace mode on a
// disk image with a boot chain (test/fleet/_update-fleet.ts): the signed commands through the
// real broker, the peer's refusals with their codes, the GPT bits as the real C stage 1 reads
// them at the next boot. Cancel is shown on an armed slot and in the middle of a bundle's
// pieces; rollback is refused with nothing to roll back to, refused onto an armed slot that
// never passed its gate, and done after a good update: the old slot boots next.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { OperatorClient, readOperatorConfig } from '../../control/operator/operator-client.ts';
import { readDiskSlots, readUpdateState } from '../../update/index.ts';
import { jsonOut, until } from '../helpers.ts';
import { stage1 } from '../update/_stage1.ts';
import { updateFleet } from './_update-fleet.ts';

interface Row {
  peer: string;
  outcome: string;
  code?: string;
  message?: string;
  output?: Record<string, unknown>;
}
const rows = (stdout: string) => (jsonOut(stdout) as { peers: Row[] }).peers;

test('mway update --cancel abandons an armed slot and a bundle half sent; --rollback boots the known-good slot, refused when there is none', async (t) => {
  const f = await updateFleet(t, { peers: 1 });
  const m = f.machines[0];
  if (m === undefined) return t.fail('no machine');
  const v2 = await f.bundle('2.0', 1, 3 * 1024 * 1024);

  // Nothing to roll back to: slot b is empty.
  const none = await f.mway('update', '--rollback', '--group', 'web', '--json', '--static');
  t.is(none.exitCode, 1, none.stdout + none.stderr);
  t.is(rows(none.stdout)[0]?.code, 'E_ROLLBACK_NOT_BOOTABLE');
  t.regex(rows(none.stdout)[0]?.message ?? '', /slot b: it is empty/);

  // Armed but not booted: not a rollback target; --cancel disarms it.
  const up = await f.mway('update', '--group', 'web', v2, '--no-reboot', '--json', '--static');
  t.is(up.exitCode, 0, up.stdout + up.stderr);
  t.deepEqual((await readDiskSlots(m.disk)).b.state, { priority: 2, tries: 1, successful: false });
  const onArmed = await f.mway('update', '--rollback', '--group', 'web', '--json', '--static');
  t.is(rows(onArmed.stdout)[0]?.code, 'E_ROLLBACK_NOT_BOOTABLE');
  t.regex(rows(onArmed.stdout)[0]?.message ?? '', /never passed its health gate/);
  const cancel = await f.mway('update', '--cancel', '--group', 'web', '--json', '--static');
  t.is(cancel.exitCode, 0, cancel.stdout + cancel.stderr);
  t.like(rows(cancel.stdout)[0]?.output ?? {}, { slot: 'b', version: '2.0', change: 'changed' });
  const slots = await readDiskSlots(m.disk);
  t.deepEqual(slots.b.state, { priority: 0, tries: 0, successful: false });
  t.is(slots.b.label, null, 'the slot is named _empty again');
  t.deepEqual(slots.a.state, { priority: 2, tries: 0, successful: true });
  t.is((await readUpdateState(join(m.root.root, 'data', 'update.json'))).trial, undefined);
  // What stage 1 does at the next boot: slot a, no trial.
  t.is((await stage1(m.disk, f.vendor))?.slot, 'a');
  const again = await f.mway('update', '--cancel', '--group', 'web', '--json', '--static');
  t.like(rows(again.stdout)[0]?.output ?? {}, { change: 'unchanged' });
  const st = await f.mway('update', 'status', '--group', 'web');
  t.notRegex(st.stdout, /armed:/);

  // In the middle of the pieces: the first is spooled, cancel drops it, the next is refused.
  const c = await OperatorClient.connect(
    await readOperatorConfig(f.env.MWAY_CONFIG_DIR),
    f.env.MWAY_CONFIG_DIR,
  );
  t.teardown(() => c.close());
  const bytes = await readFile(v2);
  t.true(bytes.length > 2 * 1024 * 1024, 'the bundle takes more than one piece');
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const piece = (offset: number) =>
    c.run({
      action: 'coreos.chunk',
      target: 'group:web',
      timeoutMs: 60_000,
      args: {
        sha256,
        size: bytes.length,
        offset,
        data: bytes.subarray(offset, offset + 2 * 1024 * 1024).toString('base64'),
      },
    });
  t.is((await piece(0)).summary.succeeded, 1);
  const spool = join(m.root.root, 'data', 'control', 'spool');
  t.deepEqual(await readdir(spool), [`${sha256}.mwu.part`]);
  const mid = await f.mway('update', '--cancel', '--group', 'web', '--json', '--static');
  t.like(rows(mid.stdout)[0]?.output ?? {}, { spooledBundles: 1, change: 'changed' });
  t.deepEqual(await readdir(spool), []);
  const next = await piece(2 * 1024 * 1024);
  t.is(next.peers[0]?.code, 'E_UPDATE_CANCELLED', next.peers[0]?.message);
  t.deepEqual(await readdir(spool), [], 'the refused piece stored nothing');

  // The update is retryable, and this time it reboots into b and passes its gate.
  const real = await f.mway('update', '--group', 'web', v2, '--json', '--static');
  t.is(real.exitCode, 0, real.stdout + real.stderr);
  t.like(rows(real.stdout)[0]?.output ?? {}, { slot: 'b', version: '2.0', rebooting: true });
  t.is(await f.boot(m), 'b');
  await m.agent.waitFor(/slot b \(2\.0\) passed its health gate/);

  // Rollback to a (rollback index 1, the floor 1): a boots next, b stays as the fallback.
  const back = await f.mway('update', '--rollback', '--group', 'web', '--json', '--static');
  t.is(back.exitCode, 0, back.stdout + back.stderr);
  t.like(rows(back.stdout)[0]?.output ?? {}, {
    from: 'b',
    to: 'a',
    version: '1.0',
    rollbackIndex: 1,
    rebooting: true,
  });
  const after = await readDiskSlots(m.disk);
  t.deepEqual(after.a.state, { priority: 2, tries: 0, successful: true });
  t.deepEqual(after.b.state, { priority: 1, tries: 0, successful: true });
  t.is(await f.boot(m), 'a');
  const status = await f.mway('update', 'status', '--group', 'web');
  t.regex(
    status.stdout,
    /p1: running a {2}a\* 1\.0 \(good, priority 2\) {2}b 2\.0 \(good, priority 1\) {2}rollback floor 1/,
  );
  t.regex(status.stdout, /last rollback: 2\.0 \(slot b\) at .*: the operator rolled back to slot a \(1\.0\)/);

  // `mway status` says the same from the stored signed status (each second here): the running
  // slot starred, the version on each, why the last update was rolled back; the facts name the
  // slot, so `fact:coreos.slot=a` targets this peer and `=b` none.
  await until(
    'a status from the boot into a',
    async () => /slots a\* 1\.0 \(good\) {2}b 2\.0 \(good\)/.test((await f.mway('status')).stdout),
    30_000,
  );
  const plain = await f.mway('status');
  t.regex(plain.stdout, /\n {2}last rollback: 2\.0 \(slot b\) at .*: the operator rolled back to slot a/);
  const [row] = jsonOut((await f.mway('status', '--json')).stdout) as Array<{
    coreos?: { running?: string; slots?: Array<{ slot: string; version: string }> };
  }>;
  t.is(row?.coreos?.running, 'a');
  t.deepEqual(
    row?.coreos?.slots?.map((s) => [s.slot, s.version]),
    [
      ['a', '1.0'],
      ['b', '2.0'],
    ],
  );
  const onA = await f.mway('status', '--target', 'fact:coreos.slot=a', '--json', '--static');
  t.is(onA.exitCode, 0, onA.stdout + onA.stderr);
  t.deepEqual(
    rows(onA.stdout).map((r) => [r.peer, r.outcome]),
    [['p1', 'ok']],
  );
  t.regex((await f.mway('status', '--target', 'fact:coreos.slot=a')).stdout, /slots a\* 1\.0 \(good\)/);
  const onB = await f.mway('status', '--target', 'fact:coreos.slot=b', '--json', '--static');
  t.not(onB.exitCode, 0, 'no peer runs slot b');
});
