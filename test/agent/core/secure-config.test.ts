// The secure config's payload (agent/core/trust.ts): one schema, key-path errors with
// E_SECURE_CONFIG, and doc/secure-config.schema.json (read by Ajv) agreeing with it.
import test from 'ava';
import { parseSecureConfig } from '../../../agent/core/trust.ts';
import {
  assertMutationsRefusedCleanly,
  assertRefused,
  deep,
  publishedValidator,
} from '../../schema-fixture.ts';

const valid = {
  v: 1,
  hostname: 'web-01',
  groups: { shop: { gid: 5000, layers: ['web', 'worker'] } },
  allowLayers: ['web', 'worker', 'libssl'],
};
const published = publishedValidator('secure-config');

test('parseSecureConfig() returns the payload with groups defaulted', (t) => {
  t.deepEqual(parseSecureConfig(valid, 's.json'), {
    hostname: 'web-01',
    groups: { shop: { gid: 5000, layers: ['web', 'worker'] } },
    allowLayers: ['web', 'worker', 'libssl'],
  });
  t.deepEqual(parseSecureConfig({ v: 1, $schema: 'x' }, 's.json'), { groups: {} });
  t.true(published(valid));
});

const hostile: [string, unknown, string][] = [
  ['an array', [], '(top level)'],
  ['a string', 'config', '(top level)'],
  ['no version', { hostname: 'a' }, 'v'],
  ['version 2', { v: 2 }, 'v'],
  ['an unknown key', { v: 1, hostnme: 'a' }, 'hostnme'],
  ['a bad host name', { v: 1, hostname: 'a b' }, 'hostname'],
  ['a bad group name', { v: 1, groups: { 'Bad Name': { gid: 5, layers: [] } } }, 'groups["Bad Name"]'],
  ['gid 0', { v: 1, groups: { g: { gid: 0, layers: [] } } }, 'groups.g.gid'],
  ['a huge gid', { v: 1, groups: { g: { gid: 1e308, layers: [] } } }, 'groups.g.gid'],
  ['gid a string', { v: 1, groups: { g: { gid: '5', layers: [] } } }, 'groups.g.gid'],
  ['a group without layers', { v: 1, groups: { g: { gid: 5 } } }, 'groups.g.layers'],
  ['a group member not a name', { v: 1, groups: { g: { gid: 5, layers: ['../x'] } } }, 'groups.g.layers[0]'],
  ['groups an array', { v: 1, groups: [] }, 'groups'],
  ['a deep group', { v: 1, groups: { g: deep(50_000) } }, 'groups.g.gid'],
  ['allowLayers a string', { v: 1, allowLayers: 'web' }, 'allowLayers'],
  ['allowLayers with a number', { v: 1, allowLayers: ['web', 7] }, 'allowLayers[1]'],
];
for (const [what, payload, key] of hostile) {
  test(`parseSecureConfig() refuses ${what} naming ${key}`, (t) => {
    assertRefused(t, () => parseSecureConfig(payload, 'secure.json'), 'E_SECURE_CONFIG', key, what);
    t.false(published(payload), 'doc/secure-config.schema.json (Ajv) refuses it too');
  });
}

test('parseSecureConfig() refuses every wrong value at every key path with E_SECURE_CONFIG', (t) => {
  assertMutationsRefusedCleanly(t, valid, (x) => parseSecureConfig(x, 'secure.json'), 'E_SECURE_CONFIG');
});
