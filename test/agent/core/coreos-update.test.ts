// A/B updates on the host, boot after boot (agent/core/coreos-updater.ts): a disk image with
// CoreOS 1.0 in slot A and its stage 2 on boot-a; the agent writes 2.0 into B (CoreOS and
// stage 2) and arms it; the real C stage 1 (`mway-stage1 boot --no-exec`) picks the slot from
// the bits on boot-a/boot-b, writes a trial's try down, verifies that slot's stage 2 and names
// the root hash it would boot; the next "boot" runs the health gate. Covers a good
// update, a bad one rolled back without operator action, a trial that never reaches the agent,
// replayed and older bundles, and no reboot loop when nothing is left to fall back to.
import test from 'ava';
import { join } from 'node:path';
import { CoreosUpdater } from '../../../agent/core/coreos-updater.ts';
import { runHealthGate } from '../../../agent/core/health-gate.ts';
import { writePartitionEntries } from '../../../formats/index.ts';
import { encodeSlot, readDiskSlots, readUpdateState, type UpdateError } from '../../../update/index.ts';
import { tempDir } from '../../helpers.ts';
import { devKeys, makeBundle, makeCoreos, makeSlotDisk } from '../../update/_slot-disk.ts';
import { stage1 } from '../../update/_stage1.ts';

async function setup(t: import('ava').ExecutionContext, o: { slotMiB?: number } = {}) {
  const dir = await tempDir(t, 'mway-ab-');
  const keys = await devKeys(dir);
  const v1 = await makeCoreos(dir, keys, { version: '1.0' });
  // As built: boot-a/boot-b carry the slot bits and each slot's stage 2.
  const disk = await makeSlotDisk(dir, v1, '1.0', { bootChain: keys, ...o });
  const bundle = async (version: string, rollbackIndex: number, fillerBytes?: number) =>
    (
      await makeBundle(
        dir,
        keys,
        await makeCoreos(dir, keys, { version, ...(fillerBytes === undefined ? {} : { fillerBytes }) }),
        { version, rollbackIndex },
      )
    ).path;
  const events: string[] = [];
  /** One boot of the machine: the agent's updater for the root hash stage 1 chose. */
  const boot = async (
    rootHash: string,
    healthy: () => string | null = () => null,
    onWrite?: (done: number, total: number) => void,
  ) => {
    const u = new CoreosUpdater({
      ...(onWrite === undefined ? {} : { onWrite }),
      config: {
        disk,
        rootHash,
        stateFile: join(dir, 'update.json'),
        readyWithinMs: 1000,
        graceMs: 100,
        requireBroker: false,
      },
      path: (p) => p,
      log: () => {},
      warn: (w) => void events.push(`warn ${w}`),
      health: async () => healthy(),
      trust: () => ({ anchors: [keys.vendorRoot], crls: [] }),
      reboot: (why) => void events.push(`reboot ${why}`),
    });
    await u.start();
    return u;
  };
  return {
    dir,
    keys,
    v1,
    disk,
    bundle,
    boot,
    events,
    state: () => readUpdateState(join(dir, 'update.json')),
  };
}

test('a good update: B written and armed from A, booted once, marked good after the gate; A kept as fallback', async (t) => {
  const s = await setup(t);
  const onA = await s.boot(s.v1.rootHash);
  const r = await onA.install(await s.bundle('2.0', 2));
  t.is(r.slot, 'b');
  const armed = await onA.status();
  t.true(armed.available);
  if (!armed.available) return;
  t.deepEqual(armed.trial && { slot: armed.trial.slot, version: armed.trial.version }, {
    slot: 'b',
    version: '2.0',
  });
  t.is(armed.rollbackFloor, 0);

  const choice = await stage1(s.disk, s.keys);
  t.is(choice?.slot, 'b');
  // The stage 2 the update wrote onto boot-b is the one stage 1 verified, and it names CoreOS 2.0.
  t.regex(choice?.out ?? '', /slot b: stage 2 milkyway 2\.0 \(rollback index 2\) verified: ML-DSA-65/);
  t.regex(choice?.out ?? '', /booting stage 2 from slot b \(trial\)/);
  t.deepEqual((await readDiskSlots(s.disk)).b.state, { priority: 2, tries: 0, successful: false });
  const onB = await s.boot(choice?.rootHash as string);
  const st = await onB.status();
  if (!st.available) return t.fail(st.reason);
  t.is(st.running, 'b');
  t.is(st.gate.state, 'passed');
  t.is(st.rollbackFloor, 2);
  t.is(st.trial, undefined);
  t.deepEqual(
    st.slots.map((x) => [x.slot, x.version, x.priority, x.successful]),
    [
      ['a', '1.0', 1, true],
      ['b', '2.0', 2, true],
    ],
  );
  t.is((await stage1(s.disk, s.keys))?.slot, 'b', 'the next boot stays on b');
  t.deepEqual(s.events, []);
});

test('replay and downgrade: the same bundle again, an older version, an index below the floor are refused', async (t) => {
  const s = await setup(t);
  const v2 = await s.bundle('2.0', 2);
  await (await s.boot(s.v1.rootHash)).install(v2);
  const onB = await s.boot((await stage1(s.disk, s.keys))?.rootHash as string);
  const code = async (p: Promise<unknown>) => ((await t.throwsAsync(p)) as UpdateError).code;
  t.is(await code(onB.install(v2)), 'E_BUNDLE_DOWNGRADE');
  t.is(await code(onB.install(await s.bundle('1.5', 3))), 'E_BUNDLE_DOWNGRADE');
  t.is(await code(onB.install(await s.bundle('3.0', 1))), 'E_BUNDLE_ROLLBACK');
  // Refusals wrote nothing: a is still the 1.0 fallback.
  const slots = await readDiskSlots(s.disk);
  t.is(slots.a.label, 'milkyway_1.0');
  t.deepEqual(slots.a.state, { priority: 1, tries: 0, successful: true });
});

test('a bad update: the trial fails its gate, is marked bad, the machine reboots into A; the status says why', async (t) => {
  const s = await setup(t);
  await (await s.boot(s.v1.rootHash)).install(await s.bundle('2.0', 2));
  const onBad = await s.boot(
    (await stage1(s.disk, s.keys))?.rootHash as string,
    () => 'service web/web failed: exit 1',
  );
  const st = await onBad.status();
  if (!st.available) return t.fail(st.reason);
  t.is(st.gate.state, 'failed');
  t.regex(
    s.events.join('\n'),
    /^reboot health gate failed: not healthy within 1 s: service web\/web failed/m,
  );
  t.deepEqual((await readDiskSlots(s.disk)).b.state, { priority: 0, tries: 0, successful: false });
  // Stage 1 falls back to a without anyone's help.
  const back = await stage1(s.disk, s.keys);
  t.is(back?.slot, 'a');
  const onA = await s.boot(back?.rootHash as string);
  const a = await onA.status();
  if (!a.available) return t.fail(a.reason);
  t.is(a.running, 'a');
  t.is(a.lastRollback?.slot, 'b');
  t.is(a.lastRollback?.version, '2.0');
  t.regex(a.lastRollback?.reason ?? '', /service web\/web failed/);
  t.is(a.rollbackFloor, 0, 'the floor never rises for a slot that did not pass');
  // The update is retryable: a fixed 2.1 installs into b again.
  t.is((await onA.install(await s.bundle('2.1', 2))).slot, 'b');
});

test('a trial that never reaches the agent (crash, hang, power cut) falls back and is reported at the next boot', async (t) => {
  const s = await setup(t);
  await (await s.boot(s.v1.rootHash)).install(await s.bundle('2.0', 2));
  t.is((await stage1(s.disk, s.keys))?.slot, 'b'); // the one try is spent; the kernel dies before the agent
  const back = await stage1(s.disk, s.keys);
  t.is(back?.slot, 'a');
  const onA = await s.boot(back?.rootHash as string);
  const st = await onA.status();
  if (!st.available) return t.fail(st.reason);
  t.is(st.lastRollback?.slot, 'b');
  t.regex(st.lastRollback?.reason ?? '', /did not reach the health gate/);
  t.regex(s.events.join('\n'), /was rolled back/);
  t.deepEqual((await readDiskSlots(s.disk)).b.state, { priority: 0, tries: 0, successful: false });
  t.is((await s.state()).trial, undefined);
});

test('no reboot loop: a failed gate with no other bootable slot stays up degraded', async (t) => {
  const s = await setup(t);
  await (await s.boot(s.v1.rootHash)).install(await s.bundle('2.0', 2));
  const choice = await stage1(s.disk, s.keys);
  // Slot a is gone meanwhile (marked bad): nothing to fall back to.
  const slots = await readDiskSlots(s.disk);
  const p = slots.a.statePartition;
  writePartitionEntries(s.disk, [
    { index: p.index, attributes: encodeSlot(p.attributes, { priority: 0, tries: 0, successful: false }) },
  ]);
  await s.boot(choice?.rootHash as string, () => 'service db not ready');
  t.false(s.events.some((e) => e.startsWith('reboot')));
  t.regex(s.events.join('\n'), /cannot boot: staying up degraded, no reboot/);
});

test('an updater on a disk without the running root hash is unavailable, and install refuses with E_SLOT_STATE', async (t) => {
  const s = await setup(t);
  const u = await s.boot('0'.repeat(64));
  const st = await u.status();
  t.false(st.available);
  const e = await t.throwsAsync(u.install(await s.bundle('2.0', 2)));
  t.is((e as UpdateError).code, 'E_SLOT_STATE');
});

test('runHealthGate(): ready within the bound, then stable for the grace period; a relapse or a timeout fails it', async (t) => {
  let n = 0;
  const ok = await runHealthGate({
    check: async () => (n++ < 3 ? 'starting' : null),
    readyWithinMs: 2000,
    graceMs: 50,
    pollMs: 5,
  });
  t.true(ok.ok);
  const late = await runHealthGate({
    check: async () => 'svc waiting',
    readyWithinMs: 30,
    graceMs: 10,
    pollMs: 5,
  });
  t.deepEqual(late, { ok: false, reason: 'not healthy within 0 s: svc waiting' });
  let m = 0;
  const relapse = await runHealthGate({
    check: async () => (m++ < 2 ? null : 'svc failed'),
    readyWithinMs: 100,
    graceMs: 200,
    pollMs: 5,
  });
  t.false(relapse.ok);
  t.regex(relapse.ok ? '' : relapse.reason, /then not during the grace period: svc failed/);
});

test('the coreos.update action: pieces by coreos.chunk, the signed digest checked, the agent writes B, reboot after the result unless reboot:false', async (t) => {
  const s = await setup(t);
  const { runAction } = await import('../../../agent/remote/actions.ts');
  const { readFile } = await import('node:fs/promises');
  const { createHash } = await import('node:crypto');
  const onA = await s.boot(s.v1.rootHash);
  const calls: string[] = [];
  const api = {
    updateCoreos: (p: string) => onA.install(p),
    checkCoreosBundleHead: (h: Uint8Array) => onA.checkHead(h),
    reboot: async () => void calls.push('reboot'),
  } as unknown as import('../../../agent/core/agent-api.ts').AgentApi;
  const ctx = { api, spoolDir: join(s.dir, 'spool') } as unknown as Parameters<typeof runAction>[1];
  const bytes = await readFile(await s.bundle('2.0', 2));
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const cmd = (action: string, args: Record<string, unknown>) =>
    ({ action, args }) as unknown as Parameters<typeof runAction>[0];
  const half = Math.ceil(bytes.length / 2);
  for (const [offset, part] of [
    [0, bytes.subarray(0, half)],
    [half, bytes.subarray(half)],
  ] as const)
    await runAction(
      cmd('coreos.chunk', { sha256, size: bytes.length, offset, data: Buffer.from(part).toString('base64') }),
      ctx,
    );
  // A digest the bytes do not have is refused before the agent sees the file.
  const wrong = await t.throwsAsync(
    runAction(cmd('coreos.update', { sha256: 'f'.repeat(64), size: bytes.length }), ctx),
  );
  t.regex((wrong as Error).message, /no chunks inline and none received|do not match/);
  const out = await runAction(cmd('coreos.update', { sha256, size: bytes.length, reboot: false }), ctx);
  t.like(out.output as object, { slot: 'b', version: '2.0', rebooting: false });
  t.is(out.after, undefined);
  t.is((await readDiskSlots(s.disk)).b.label, 'milkyway_2.0');
  t.deepEqual(calls, []);
});

test('the first coreos.chunk of a bundle this machine refuses (older, foreign) fails at once and stores nothing', async (t) => {
  const s = await setup(t);
  const { runAction } = await import('../../../agent/remote/actions.ts');
  const { readdir, readFile } = await import('node:fs/promises');
  const { createHash } = await import('node:crypto');
  const onA = await s.boot(s.v1.rootHash);
  const api = {
    checkCoreosBundleHead: (h: Uint8Array) => onA.checkHead(h),
  } as unknown as import('../../../agent/core/agent-api.ts').AgentApi;
  const spoolDir = join(s.dir, 'spool');
  const ctx = { api, spoolDir } as unknown as Parameters<typeof runAction>[1];
  const other = await devKeys(join(s.dir, 'other'));
  const foreign = (
    await makeBundle(s.dir, other, await makeCoreos(s.dir, other, { version: '2.1' }), {
      version: '2.1',
      rollbackIndex: 2,
    })
  ).path;
  for (const [path, code] of [
    [await s.bundle('0.9', 2), 'E_BUNDLE_DOWNGRADE'],
    [foreign, 'E_BUNDLE_SIGNATURE'],
  ] as const) {
    const bytes = await readFile(path);
    const first = bytes.subarray(0, 2 * 1024 * 1024);
    const e = await t.throwsAsync(
      runAction(
        {
          action: 'coreos.chunk',
          args: {
            sha256: createHash('sha256').update(bytes).digest('hex'),
            size: bytes.length,
            offset: 0,
            data: Buffer.from(first).toString('base64'),
          },
        } as unknown as Parameters<typeof runAction>[0],
        ctx,
      ),
    );
    t.is((e as UpdateError).code, code, (e as Error).message);
  }
  t.deepEqual(await readdir(spoolDir).catch(() => []), []);
});

test('rollback: refused below the rollback floor the good update raised, and onto a slot marked bad; nothing written', async (t) => {
  const s = await setup(t);
  await (await s.boot(s.v1.rootHash)).install(await s.bundle('2.0', 2));
  const onB = await s.boot((await stage1(s.disk, s.keys))?.rootHash as string);
  const before = await readDiskSlots(s.disk);
  const e = (await t.throwsAsync(onB.rollback())) as UpdateError;
  t.is(e.code, 'E_ROLLBACK_FLOOR');
  t.regex(e.message, /slot a \(1\.0\): its rollback index is 1, below this machine's floor 2/);
  const after = await readDiskSlots(s.disk);
  t.deepEqual([after.a.state, after.b.state], [before.a.state, before.b.state]);
  t.is((await stage1(s.disk, s.keys))?.slot, 'b');

  // A trial that failed its gate leaves slot b bad: from a, b is no rollback target.
  const s2 = await setup(t);
  await (await s2.boot(s2.v1.rootHash)).install(await s2.bundle('2.0', 2));
  await s2.boot((await stage1(s2.disk, s2.keys))?.rootHash as string, () => 'service db failed');
  const onA = await s2.boot((await stage1(s2.disk, s2.keys))?.rootHash as string);
  t.is(((await t.throwsAsync(onA.rollback())) as UpdateError).code, 'E_ROLLBACK_NOT_BOOTABLE');
});

test('cancel in the middle of writing the inactive slot: the write stops, the slot is left empty, slot a untouched, the update retryable', async (t) => {
  const s = await setup(t, { slotMiB: 48 });
  const big = await s.bundle('2.0', 2, 40 * 1024 * 1024);
  const slotA = async () => {
    const { a } = await readDiskSlots(s.disk);
    const { createHash } = await import('node:crypto');
    const { readFile } = await import('node:fs/promises');
    const bytes = await readFile(s.disk);
    const h = createHash('sha256');
    for (const p of [a.boot, a.data, a.verity, a.sig])
      if (p !== null)
        h.update(bytes.subarray(Number(p.firstLba) * 512, Number(p.firstLba) * 512 + Number(p.sizeBytes)));
    return { state: a.state, sha: h.digest('hex') };
  };
  const a0 = await slotA();
  let cancelled: Promise<Record<string, unknown>> | undefined;
  let writtenAtCancel = 0;
  let total = 0;
  const u = await s.boot(s.v1.rootHash, undefined, (done, all) => {
    total = all;
    if (cancelled === undefined) {
      writtenAtCancel = done;
      cancelled = u.cancel();
    }
  });
  const e = (await t.throwsAsync(u.install(big))) as UpdateError;
  t.is(e.code, 'E_UPDATE_CANCELLED');
  t.true(writtenAtCancel < total, 'cancelled part way');
  t.like((await cancelled) ?? {}, { slot: 'b', stoppedWrite: true, change: 'changed' });
  const slots = await readDiskSlots(s.disk);
  t.deepEqual(slots.b.state, { priority: 0, tries: 0, successful: false });
  t.is(slots.b.label, null);
  t.deepEqual(await slotA(), a0, 'slot a: bits and bytes as before');
  t.is((await stage1(s.disk, s.keys))?.slot, 'a');
  t.is((await s.state()).trial, undefined);
  // Sent again, it installs and arms b.
  const u2 = await s.boot(s.v1.rootHash);
  t.is((await u2.install(big)).slot, 'b');
  t.is((await stage1(s.disk, s.keys))?.slot, 'b');
});
