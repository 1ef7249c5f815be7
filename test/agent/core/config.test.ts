import test from 'ava';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAgentConfig } from '../../../agent/core/agent-config.ts';
import { resolveSource } from '../../../agent/core/boot-mounts.ts';
import { tempDir } from '../../helpers.ts';

test('parseAgentConfig() fills defaults and resolves --root over the file', (t) => {
  const c = parseAgentConfig({ root: '/x', dataDir: '/d' }, { root: '/tmp/r' });
  t.is(c.root, '/tmp/r');
  t.is(c.dataDir, '/d');
  t.is(c.layersDir, '/layers');
  t.false(c.allowUserspaceVerity);
  t.deepEqual(c.mounts, []);
  t.is(c.dbus, undefined);
  t.deepEqual(parseAgentConfig({ dbus: {} }).dbus, {});
  t.deepEqual(parseAgentConfig({ control: { broker: 'b' } }).control, { broker: 'b' });
});

test('parseAgentConfig() names the offending key', (t) => {
  const bad: [unknown, RegExp][] = [
    [[], /\(top level\): expected a JSON object/],
    [{ layerDir: '/l' }, /key layerDir: unknown key/],
    [{ allowUserspaceVerity: 'yes' }, /key allowUserspaceVerity: expected true or false/],
    [{ logs: { fileBytes: 1 } }, /key logs\.fileBytes: expected an integer/],
    [{ logs: { size: 1 } }, /key logs\.size: unknown key/],
    [{ dbus: { address: '' } }, /key dbus\.address/],
    [{ control: 'x' }, /key control: expected an object/],
    [{ mounts: [{ source: 'LABEL=x', target: '/data', type: 'ext4' }] }, /key mounts\[0\]\.source/],
    [
      { mounts: [{ source: '/dev/vda5', target: 'data', type: 'ext4' }] },
      /key mounts\[0\]\.target: expected an absolute path/,
    ],
    [
      { mounts: [{ source: '/dev/vda5', target: '/d', type: 'ext4', options: 'a b' }] },
      /key mounts\[0\]\.options/,
    ],
  ];
  for (const [raw, re] of bad) {
    const e = t.throws(() => parseAgentConfig(raw), { code: 'E_CONFIG_INVALID' } as never);
    t.regex(e?.message ?? '', re);
  }
});

test('resolveSource() finds a partition by its GPT name in sysfs uevents', async (t) => {
  const sys = await tempDir(t);
  for (const [dev, name] of [
    ['vda', ''],
    ['vda1', 'esp'],
    ['vda7', 'data'],
  ] as const) {
    await mkdir(join(sys, dev));
    await writeFile(
      join(sys, dev, 'uevent'),
      `MAJOR=254\nDEVNAME=${dev}\n${name === '' ? '' : `PARTNAME=${name}\n`}`,
    );
  }
  t.is(await resolveSource('PARTLABEL=data', sys), '/dev/vda7');
  t.is(await resolveSource('/dev/sdb1', sys), '/dev/sdb1');
  await t.throwsAsync(resolveSource('PARTLABEL=nope', sys), { code: 'E_MOUNT' } as never);
});
