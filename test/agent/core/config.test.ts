import test from 'ava';
import { execa } from 'execa';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAgentConfig, readAgentConfig } from '../../../agent/core/agent-config.ts';
import { readSecureConfig } from '../../../agent/core/trust.ts';
import { resolveSource } from '../../../agent/core/boot-mounts.ts';
import { tempDir } from '../../helpers.ts';
import {
  assertMutationsRefusedCleanly,
  assertRefused,
  deep,
  publishedValidator,
} from '../../schema-fixture.ts';

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
    [[], /\(top level\): expected an object, got an array/],
    [{ layerDir: '/l' }, /: layerDir: unknown key/],
    [{ allowUserspaceVerity: 'yes' }, /: allowUserspaceVerity: expected true or false/],
    [{ logs: { fileBytes: 1 } }, /: logs\.fileBytes: expected an integer/],
    [{ logs: { size: 1 } }, /: logs\.size: unknown key/],
    [{ dbus: { address: '' } }, /: dbus\.address/],
    [{ control: 'x' }, /: control: expected an object/],
    [{ mounts: [{ source: 'LABEL=x', target: '/data', type: 'ext4' }] }, /: mounts\[0\]\.source/],
    [
      { mounts: [{ source: '/dev/vda5', target: 'data', type: 'ext4' }] },
      /: mounts\[0\]\.target: expected an absolute path/,
    ],
    [
      { mounts: [{ source: '/dev/vda5', target: '/d', type: 'ext4', options: 'a b' }] },
      /: mounts\[0\]\.options/,
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

const published = publishedValidator('agent-config');
const valid = {
  $schema: '../doc/agent-config.schema.json',
  stateDir: '/run',
  dataDir: '/data',
  allowUserspaceVerity: true,
  stopTimeoutMs: 5000,
  logs: { ringLines: 10, fileBytes: 8192, files: 2, rateLinesPerSecond: 100 },
  mounts: [{ source: 'PARTLABEL=data', target: '/data', type: 'ext4', options: 'rw,nodev' }],
  dbus: { address: 'unix:path=/run/bus' },
  control: { broker: '127.0.0.1:7443' },
};

// Hostile inputs: wrong types, unknown keys, missing required, huge numbers, deep nesting.
const hostile: [string, unknown, string][] = [
  ['a top-level array', [], '(top level)'],
  ['a top-level number', 3, '(top level)'],
  ['null', null, '(top level)'],
  ['an unknown key', { ...valid, layerDir: '/l' }, 'layerDir'],
  ['a relative path', { ...valid, stateDir: 'run' }, 'stateDir'],
  ['a path with NUL', { ...valid, dataDir: '/d\0x' }, 'dataDir'],
  ['a number as a path', { ...valid, layersDir: 7 }, 'layersDir'],
  ['a huge stop timeout', { ...valid, stopTimeoutMs: 1e308 }, 'stopTimeoutMs'],
  ['an unsafe integer', { ...valid, logs: { files: 2 ** 60 } }, 'logs.files'],
  ['a negative ring', { ...valid, logs: { ringLines: -1 } }, 'logs.ringLines'],
  ['logs an array', { ...valid, logs: [] }, 'logs'],
  ['mounts an object', { ...valid, mounts: {} }, 'mounts'],
  ['a mount missing type', { ...valid, mounts: [{ source: '/dev/vda1', target: '/d' }] }, 'mounts[0].type'],
  ['a mount with an unknown key', { ...valid, mounts: [{ ...valid.mounts[0], mode: 1 }] }, 'mounts[0].mode'],
  ['65 mounts', { ...valid, mounts: Array(65).fill(valid.mounts[0]) }, 'mounts'],
  ['a deep object as dbus', { ...valid, dbus: deep(50_000) }, 'dbus.a'],
  ['control an array', { ...valid, control: [] }, 'control'],
  ['__proto__', JSON.parse('{"__proto__": {"root": "/x"}}'), '__proto__'],
];
for (const [what, raw, key] of hostile) {
  test(`parseAgentConfig() refuses ${what} naming ${key}`, (t) => {
    assertRefused(t, () => parseAgentConfig(raw, { file: 'agent.json' }), 'E_CONFIG_INVALID', key, what);
    t.false(published(raw), 'doc/agent-config.schema.json (Ajv) refuses it too');
  });
}

test('parseAgentConfig() takes $schema, a deep control section, and what the published schema takes', (t) => {
  t.true(published(valid));
  t.is(parseAgentConfig(valid).logs.files, 2);
  t.is((parseAgentConfig({ control: { x: deep(50_000) } }).control as { x: unknown }).x !== undefined, true);
});

test('parseAgentConfig() refuses every wrong value at every key path with E_CONFIG_INVALID', (t) => {
  assertMutationsRefusedCleanly(t, valid, (x) => parseAgentConfig(x), 'E_CONFIG_INVALID');
});

// A FIFO where a boot file goes would block a plain read forever (a hung boot): both readers
// refuse by type before any read, and refuse an oversized file before reading it.
test('the agent config and the secure config are refused by type (FIFO, directory) and size, never read', async (t) => {
  const d = await tempDir(t);
  await execa('mkfifo', [join(d, 'fifo')]);
  await mkdir(join(d, 'dir'));
  await writeFile(join(d, 'huge'), Buffer.alloc(2 << 20, 0x20));
  const codeOf = (p: Promise<unknown>) =>
    p.then(
      () => 'accepted',
      (e: unknown) => (e as { code?: string }).code ?? String(e),
    );
  for (const [name, want] of [
    ['fifo', 'E_NOT_REGULAR_FILE'],
    ['dir', 'E_NOT_REGULAR_FILE'],
    ['missing', 'E_CONFIG_READ'],
    ['huge', 'E_CONFIG_INVALID'],
  ] as const)
    t.is(await codeOf(readAgentConfig(join(d, name))), want, `agent config: ${name}`);
  for (const [name, want] of [
    ['fifo', 'E_NOT_REGULAR_FILE'],
    ['dir', 'E_NOT_REGULAR_FILE'],
    ['missing', 'E_SECURE_CONFIG'],
    ['huge', 'E_SECURE_CONFIG'],
  ] as const)
    t.is(
      await codeOf(readSecureConfig(join(d, name), { anchors: [], crls: [] })),
      want,
      `secure config: ${name}`,
    );
});
