// kill -9 of the agent in the middle of writing the inactive slot, with a REAL agent in
// namespace mode on a disk image with a boot chain (test/fleet/_update-fleet.ts): the writer is
// the agent itself, so SIGKILL of it is the power cut as far as the slot is concerned (nothing
// runs after it: no cleanup, no GPT write; what the page cache holds stays, as a disk's
// write cache would not — the host cannot cut power to an image file). Then the GPT is read
// again by sgdisk, which nobody here wrote: both copies verify, slot b is `_empty` with no slot
// bits, so the real C stage 1 boots slot a; the update is sent again and this time goes through.
import { join } from 'node:path';
import test from 'ava';
import { run } from '../../common/exec.ts';
import { readDiskSlots, readUpdateState } from '../../update/index.ts';
import { stage1 } from '../update/_stage1.ts';
import { updateFleet } from './_update-fleet.ts';

const MiB = 1024 * 1024;
/** ChromeOS/Bottlerocket slot bits (48–56) of a GPT attribute value. */
const SLOT_BITS = 0x01ff_0000_0000_0000n;

/** `sgdisk -i N`: the partition's name and attribute flags, as gdisk reads them. */
async function sgdiskInfo(disk: string, index: number): Promise<{ name: string; attributes: bigint }> {
  const r = await run('sgdisk', ['-i', String(index), disk], { timeout: 30_000 });
  const name = /Partition name: '(.*)'/.exec(r.stdout)?.[1];
  const flags = /Attribute flags: ([0-9A-Fa-f]{16})/.exec(r.stdout)?.[1];
  if (name === undefined || flags === undefined) throw new Error(`sgdisk -i ${index}: ${r.stdout}`);
  return { name, attributes: BigInt(`0x${flags}`) };
}

test('kill -9 of the agent while it writes slot b leaves a GPT that verifies, slot a booting, and the update retryable', async (t) => {
  t.timeout(300_000);
  const f = await updateFleet(t, { peers: 1, slotMiB: 64 });
  const m = f.machines[0];
  if (m === undefined) return t.fail('no machine');
  // Big enough that the write and its read-back take far longer than the test takes to react.
  const v2 = await f.bundle('2.0', 1, 48 * MiB);
  const pid = await m.agent.hostPid();

  const first = f.mway('update', '--group', 'web', v2, '--timeout', '15', '--json', '--static');
  await m.agent.waitFor(/CoreOS update: inactive slot 25% written/, 180_000);
  process.kill(pid, 'SIGKILL');
  const cut = await first;
  t.not(cut.exitCode, 0, 'the peer never answered');
  t.notRegex(m.agent.output(), /written to slot b and verified/, 'killed before the write ended');

  // The GPT as gdisk reads it: both headers and arrays with right CRCs, b empty and unarmed.
  const verify = await run('sgdisk', ['-v', m.disk], { timeout: 30_000 });
  t.regex(verify.stdout, /No problems found/, verify.stdout);
  const slots = await readDiskSlots(m.disk);
  const bootB = await sgdiskInfo(m.disk, slots.b.statePartition.index);
  t.is(bootB.attributes & SLOT_BITS, 0n, `boot-b attributes ${bootB.attributes.toString(16)}`);
  for (const p of [slots.b.data, slots.b.verity, slots.b.sig])
    t.is((await sgdiskInfo(m.disk, p.index)).name, '_empty');
  const bootA = await sgdiskInfo(m.disk, slots.a.statePartition.index);
  t.not(bootA.attributes & SLOT_BITS, 0n, 'slot a keeps its bits');
  t.is((await readUpdateState(join(m.root.root, 'data', 'update.json'))).trial, undefined, 'nothing armed');

  // The next boot: stage 1 takes slot a; the agent starts there, its update lock stale.
  t.is(await f.boot(m, { kill: true }), 'a');
  await m.agent.waitFor(/boot done:/);
  const st = await f.mway('update', 'status', '--group', 'web');
  t.regex(st.stdout, /p1: running a {2}a\* 1\.0 \(good, priority 2\) {2}b - \(empty, priority 0\)/);

  // Sent again: written, verified, armed, and the trial boot passes its gate.
  const againRun = f.mway('update', '--group', 'web', v2, '--json', '--static');
  const from = m.agent.output().length;
  const seen = async (re: RegExp) => {
    for (;;) {
      if (re.test(m.agent.output().slice(from))) return Date.now();
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const q1 = await seen(/inactive slot 25% written/);
  const done = await seen(/written to slot b and verified/);
  // The window the kill above had: from the 25 % line to the slot armed.
  t.log(`25 % written → written and verified: ${done - q1} ms`);
  const again = await againRun;
  t.is(again.exitCode, 0, again.stdout + again.stderr);
  t.is(await f.boot(m), 'b');
  await m.agent.waitFor(/slot b \(2\.0\) passed its health gate/);
  t.is((await stage1(m.disk, f.vendor))?.slot, 'b');
});
