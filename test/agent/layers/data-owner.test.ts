// A layer's private data is owned by the uid its services run as (privateDataOwner): a service
// running as root has no CAP_DAC_OVERRIDE (the agent never grants it), so it could not enter a
// 0700 folder of the layer's dynamic uid. The kernel is the judge here: a root shell with every
// capability dropped by util-linux's setpriv writes in the folder layerDataBinds made for it and
// is refused in one made for the layer's uid.
import test from 'ava';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../../common/exec.ts';
import { layerDataBinds, prepareDataRoot, privateDataOwner } from '../../../agent/layers/data-dirs.ts';
import type { SecureConfig } from '../../../agent/core/trust.ts';

const LAYER = { uid: 61200, gid: 61200 };
const secure = { v: 1, groups: {} } as unknown as SecureConfig;

test('privateDataOwner: root when every service runs as root, else the layer’s own uid', (t) => {
  t.deepEqual(privateDataOwner([{ user: 'root', group: 'root' }], LAYER), { uid: 0, gid: 0 });
  t.deepEqual(privateDataOwner([{ user: 'root', group: 'app' }], LAYER), { uid: 0, gid: LAYER.gid });
  t.deepEqual(privateDataOwner([{ user: 'app', group: 'app' }], LAYER), LAYER);
  // Mixed: the data is the layer uid's services'; its root services do not reach it.
  t.deepEqual(
    privateDataOwner(
      [
        { user: 'app', group: 'app' },
        { user: 'root', group: 'root' },
      ],
      LAYER,
    ),
    LAYER,
  );
  t.deepEqual(privateDataOwner([], LAYER), LAYER);
});

test('layerDataBinds: a root service without capabilities writes in its own private data, not in a layer uid’s', async (t) => {
  t.timeout(60_000);
  const dir = await mkdtemp(join(tmpdir(), 'mway-data-owner-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await prepareDataRoot(dir);
  const wants = { private: true, common: false, groups: [] };
  await layerDataBinds(
    dir,
    'rooted',
    privateDataOwner([{ user: 'root', group: 'root' }], LAYER),
    wants,
    secure,
  );
  await layerDataBinds(
    dir,
    'dynamic',
    privateDataOwner([{ user: 'app', group: 'app' }], LAYER),
    wants,
    secure,
  );
  const rooted = await stat(join(dir, 'secure', 'rooted'));
  const dynamic = await stat(join(dir, 'secure', 'dynamic'));
  t.deepEqual([rooted.uid, rooted.gid, rooted.mode & 0o7777], [0, 0, 0o700]);
  t.deepEqual([dynamic.uid, dynamic.gid, dynamic.mode & 0o7777], [LAYER.uid, LAYER.gid, 0o700]);
  // uid 0 with no capability at all, as the supervisor starts a root service with an empty
  // capabilityBoundingSet: only the mode bits decide.
  const asCaplessRoot = (path: string) =>
    run(
      'setpriv',
      ['--inh-caps=-all', '--bounding-set=-all', '--', '/bin/sh', '-c', 'echo x > "$1"', 'sh', path],
      { timeout: 10_000, reject: false },
    );
  t.is((await asCaplessRoot(join(dir, 'secure', 'rooted', 'f'))).exitCode, 0);
  const refused = await asCaplessRoot(join(dir, 'secure', 'dynamic', 'f'));
  t.not(refused.exitCode, 0);
  t.regex(refused.stderr, /Permission denied/);
});
