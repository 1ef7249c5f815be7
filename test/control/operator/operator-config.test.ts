// The operator config (~/.config/mway/config.json): one schema, E_CONFIG naming the key path,
// written only when it reads back, doc/operator-config.schema.json (Ajv) agreeing with it.
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  operatorConfigFormat,
  readOperatorConfig,
  writeOperatorConfig,
} from '../../../control/operator/operator-client.ts';
import { tempDir } from '../../helpers.ts';
import {
  assertMutationsRefusedCleanly,
  assertRefused,
  deep,
  publishedValidator,
} from '../../schema-fixture.ts';

const valid = {
  broker: '127.0.0.1:7443',
  fleet: 'prod',
  key: '/k/op.key',
  cert: '/k/op.crt',
  anchors: ['/k/user-root.crt'],
  crls: [],
  brokerFingerprint: 'ab'.repeat(32),
};
const published = publishedValidator('operator-config');
const parse = (x: unknown) => operatorConfigFormat.parse(x, 'config.json');

test('writeOperatorConfig() writes what readOperatorConfig() reads back; $schema is accepted', async (t) => {
  const dir = await tempDir(t);
  await writeOperatorConfig(valid, dir);
  t.deepEqual(await readOperatorConfig(dir), valid);
  await writeFile(join(dir, 'config.json'), JSON.stringify({ ...valid, $schema: 'x', crls: undefined }));
  t.deepEqual((await readOperatorConfig(dir)).crls, []);
  t.true(published(valid));
});

test('writeOperatorConfig() refuses a bad fleet before writing, naming the key', async (t) => {
  const dir = await tempDir(t);
  const e = await t.throwsAsync(writeOperatorConfig({ ...valid, fleet: 'a b' }, dir), {
    code: 'E_CONFIG',
  } as never);
  t.regex(e?.message ?? '', /fleet: "a b" is not a name/);
  await t.throwsAsync(readOperatorConfig(dir), { code: 'E_CONFIG' } as never);
});

const hostile: [string, unknown, string][] = [
  ['an array', [], '(top level)'],
  ['an unknown key', { ...valid, brokr: 'x' }, 'brokr'],
  ['no broker', { ...valid, broker: undefined }, 'broker'],
  ['broker not host:port', { ...valid, broker: 'b' }, 'broker'],
  ['fleet a number', { ...valid, fleet: 7 }, 'fleet'],
  ['anchors a string', { ...valid, anchors: '/k/r.crt' }, 'anchors'],
  ['an anchor not a string', { ...valid, anchors: ['/a', {}] }, 'anchors[1]'],
  ['a short fingerprint', { ...valid, brokerFingerprint: 'ab' }, 'brokerFingerprint'],
  ['a deep key', { ...valid, key: deep(50_000) }, 'key'],
  ['1,001 crls', { ...valid, crls: Array(1001).fill('/c') }, 'crls'],
];
for (const [what, raw, key] of hostile) {
  test(`the operator config refuses ${what} naming ${key}`, (t) => {
    assertRefused(t, () => parse(raw), 'E_CONFIG', key, what);
    t.false(published(raw), 'doc/operator-config.schema.json (Ajv) refuses it too');
  });
}

test('the operator config refuses every wrong value at every key path with E_CONFIG', (t) => {
  assertMutationsRefusedCleanly(t, valid, parse, 'E_CONFIG');
});
