// The health gate's "broker reached" condition (agent config update.requireBroker), with a
// REAL agent in namespace mode on a disk image with a boot chain (test/fleet/_update-fleet.ts):
// a trial boot whose agent cannot reach the broker (its broker address is a closed port for
// that boot) fails its gate although everything else is healthy, marks the slot bad and
// reboots into slot a by itself; with the broker reachable, the next release passes the same
// gate. The real C stage 1 picks each slot between boots.
import { readFile, writeFile } from 'node:fs/promises';
import test from 'ava';
import { readDiskSlots } from '../../update/index.ts';
import { freePort } from '../helpers.ts';
import { updateFleet } from './_update-fleet.ts';

test('update.requireBroker: a trial boot that never reaches the broker fails its gate and falls back; one that does passes', async (t) => {
  t.timeout(240_000);
  const f = await updateFleet(t, { peers: 1, readyWithinMs: 3000, update: { requireBroker: true } });
  const m = f.machines[0];
  if (m === undefined) return t.fail('no machine');
  const v2 = await f.bundle('2.0', 1);
  const up = await f.mway('update', '--group', 'web', v2, '--json', '--static');
  t.is(up.exitCode, 0, up.stdout + up.stderr);

  const good = await readFile(m.root.configPath, 'utf8');
  const closed = await freePort();
  const cut = async () => {
    const cfg = JSON.parse(await readFile(m.root.configPath, 'utf8')) as {
      control: Record<string, unknown>;
    };
    cfg.control.broker = `127.0.0.1:${closed}`;
    await writeFile(m.root.configPath, JSON.stringify(cfg));
  };
  t.is(await f.boot(m, { before: cut, offline: true }), 'b');
  await m.agent.waitFor(
    /slot b \(2\.0\) failed its health gate: not healthy within 3 s: the peer link has not reached the broker yet; rebooting into slot a/,
    30_000,
  );
  // Back on a with the broker reachable again (boot() writes the root hash stage 1 chose).
  t.is(
    await f.boot(m, {
      before: async () => {
        const cfg = JSON.parse(good) as { update: Record<string, unknown> };
        const now = JSON.parse(await readFile(m.root.configPath, 'utf8')) as {
          update: Record<string, unknown>;
        };
        cfg.update = now.update;
        await writeFile(m.root.configPath, JSON.stringify(cfg));
      },
    }),
    'a',
  );
  t.deepEqual((await readDiskSlots(m.disk)).b.state, { priority: 0, tries: 0, successful: false });
  const st = await f.mway('update', 'status', '--group', 'web');
  t.regex(
    st.stdout,
    /last rollback: 2\.0 \(slot b\) at .*: not healthy within 3 s: the peer link has not reached the broker yet/,
  );

  // The same gate with the broker there: 3.0 passes it.
  const v3 = await f.bundle('3.0', 2);
  const up3 = await f.mway('update', '--group', 'web', v3, '--json', '--static');
  t.is(up3.exitCode, 0, up3.stdout + up3.stderr);
  t.is(await f.boot(m), 'b');
  await m.agent.waitFor(/slot b \(3\.0\) passed its health gate/);
});
