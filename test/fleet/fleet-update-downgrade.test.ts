// A user-signed downgrade, with a REAL agent in namespace mode on a disk image with a boot chain
// (test/fleet/_update-fleet.ts): after 2.0 passed its gate, a 1.5 bundle (same rollback index,
// so at the floor) is refused on its first piece (E_BUNDLE_DOWNGRADE); a permit signed with the
// user key by `mway-image bundle permit` for another bundle is refused (E_DOWNGRADE_PERMIT),
// and the permit for this one lets 1.5 in: written into slot a, booted by the real C stage 1 as
// a trial, marked good by its gate. The machine's certificate partition holds the user root of
// the image's keys folder, as a built image's does.
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { cli, jsonOut } from '../helpers.ts';
import { updateFleet } from './_update-fleet.ts';

interface Row {
  peer: string;
  outcome: string;
  code?: string;
  message?: string;
  output?: Record<string, unknown>;
}
const rows = (stdout: string) => (jsonOut(stdout) as { peers: Row[] }).peers;

test('an older bundle installs only with a user-signed downgrade permit for exactly that bundle', async (t) => {
  t.timeout(240_000);
  const f = await updateFleet(t, { peers: 1 });
  const m = f.machines[0];
  if (m === undefined) return t.fail('no machine');
  const keys = join(f.dir, 'vendor', 'keys');
  await copyFile(join(keys, 'user-root.crt'), join(m.root.root, 'certs', 'image-user-root.crt'));

  const v2 = await f.bundle('2.0', 1);
  t.is((await f.mway('update', '--group', 'web', v2, '--json', '--static')).exitCode, 0);
  t.is(await f.boot(m), 'b');
  await m.agent.waitFor(/slot b \(2\.0\) passed its health gate: marked good, rollback floor 1/);

  const v15 = await f.bundle('1.5', 1);
  const plain = await f.mway('update', '--group', 'web', v15, '--json', '--static');
  t.is(plain.exitCode, 1);
  t.is(rows(plain.stdout)[0]?.code, 'E_BUNDLE_DOWNGRADE', plain.stdout);

  // A permit for another 1.5 bundle (other bytes) does not fit this one.
  const other = await f.bundle('1.5', 1, 128 * 1024);
  const wrong = join(f.dir, 'wrong-permit.json');
  const made = await cli('mway-image', ['bundle', 'permit', other, '--keys', keys, '-o', wrong, '--json']);
  t.is(made.exitCode, 0, made.stdout + made.stderr);
  const mismatch = await f.mway(
    'update',
    '--group',
    'web',
    v15,
    '--downgrade-permit',
    wrong,
    '--json',
    '--static',
  );
  t.is(rows(mismatch.stdout)[0]?.code, 'E_DOWNGRADE_PERMIT', mismatch.stdout);
  t.regex(
    rows(mismatch.stdout)[0]?.message ?? '',
    /it is for milkyway 1\.5 \(bundle [0-9a-f]{12}\), not milkyway 1\.5/,
  );

  const permit = join(f.dir, 'permit.json');
  const ok = await cli('mway-image', [
    'bundle',
    'permit',
    v15,
    '--keys',
    keys,
    '-o',
    permit,
    '--days',
    '2',
    '--json',
  ]);
  t.is(ok.exitCode, 0, ok.stdout + ok.stderr);
  t.like(jsonOut(ok.stdout) as object, { name: 'milkyway', version: '1.5' });
  const down = await f.mway(
    'update',
    '--group',
    'web',
    v15,
    '--downgrade-permit',
    permit,
    '--json',
    '--static',
  );
  t.is(down.exitCode, 0, down.stdout + down.stderr);
  t.like(rows(down.stdout)[0]?.output ?? {}, { slot: 'a', version: '1.5', rebooting: true });
  t.regex(m.agent.output(), /CoreOS 1\.5 is not newer than 2\.0: a user-signed downgrade permit allows it/);
  t.is(await f.boot(m), 'a');
  await m.agent.waitFor(/slot a \(1\.5\) passed its health gate: marked good, rollback floor 1/);
});
