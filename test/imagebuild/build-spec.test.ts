// The image spec: defaults, path resolution, and errors that name the offending key.
import test from 'ava';
import { join } from 'node:path';
import { isImageError } from '../../imagebuild/image-error.ts';
import { readFileSync } from 'node:fs';
import { DEFAULT_SPEC, loadImageSpec, validateImageSpec } from '../../imagebuild/image-spec.ts';
import { assertMutationsRefusedCleanly, assertRefused, deep, publishedValidator } from '../schema-fixture.ts';

const base = { name: 'web', version: '1.0.0' };

test('validateImageSpec() fills defaults and resolves paths against the spec folder', (t) => {
  const s = validateImageSpec(
    { ...base, layers: ['l/web', '/abs/x.mwl'] },
    { source: '/specs/a/image.json' },
  );
  t.deepEqual(s.layers, ['/specs/a/l/web', '/abs/x.mwl']);
  t.deepEqual(s.kernel, { package: 'linux-image-amd64' });
  t.deepEqual(s.keys, { dir: 'keys', generate: true });
  t.is(s.partitions.esp, 64);
  t.is(s.architecture, 'x86_64');
});

// The third column is the key path named; a fourth `true` marks a rule checked after the
// schema pass (cross-field), which the published JSON Schema does not express.
const bad: [string, unknown, string, boolean?][] = [
  ['unknown top-level key', { ...base, colour: 1 }, 'colour'],
  ['bad name', { ...base, name: 'Web Server' }, 'name'],
  ['missing version', { name: 'web' }, 'version'],
  ['other architecture', { ...base, architecture: 'arm64' }, 'architecture'],
  ['kernel with both', { ...base, kernel: { package: 'linux-image-amd64', deb: 'x.deb' } }, 'kernel', true],
  ['kernel glob', { ...base, kernel: { package: 'linux-image-*' } }, 'kernel.package'],
  ['layer not a string', { ...base, layers: ['a', 3] }, 'layers[1]'],
  ['partition size', { ...base, partitions: { data: -1 } }, 'partitions.data'],
  ['unknown partition', { ...base, partitions: { swap: 4 } }, 'partitions.swap'],
  ['relative binary', { ...base, coreos: { binaries: ['bin/x'] } }, 'coreos.binaries[0]'],
  [
    'file dest escapes',
    { ...base, coreos: { files: [{ src: 'a', dest: '/etc/../../x' }] } },
    'coreos.files[0].dest',
    true,
  ],
  ['bad address', { ...base, coreos: { network: { address: '10.0.2.15' } } }, 'coreos.network.address'],
  [
    'roothash on the cmdline',
    { ...base, coreos: { cmdline: ['mway.roothash=00'] } },
    'coreos.cmdline[0]',
    true,
  ],
  ['secure config key', { ...base, secureConfig: { hostnme: 'x' } }, 'secureConfig.hostnme'],
  ['keys.generate type', { ...base, keys: { dir: 'k', generate: 'yes' } }, 'keys.generate'],
  // Hostile: wrong types, unknown keys, missing required, huge numbers, deep nesting.
  ['a top-level array', [], '(top level)'],
  ['a top-level string', 'image', '(top level)'],
  ['null', null, '(top level)'],
  ['missing name', { version: '1' }, 'name'],
  ['name a number', { ...base, name: 7 }, 'name'],
  ['a 1 MB name', { ...base, name: 'a'.repeat(1 << 20) }, 'name'],
  ['partitions an array', { ...base, partitions: [64] }, 'partitions'],
  ['a huge partition', { ...base, partitions: { data: 1e308 } }, 'partitions.data'],
  ['an infinite partition', { ...base, partitions: { data: Number.POSITIVE_INFINITY } }, 'partitions.data'],
  ['a fractional partition', { ...base, partitions: { esp: 64.5 } }, 'partitions.esp'],
  ['an unsafe integer partition', { ...base, partitions: { layers: 2 ** 60 } }, 'partitions.layers'],
  ['a deep object as coreos', { ...base, coreos: deep(50_000) }, 'coreos.a'],
  ['a deep object as a layer', { ...base, layers: [deep(50_000)] }, 'layers[0]'],
  ['a deep object under agent', { ...base, agent: { dbus: {}, x: deep(50_000) } }, 'agent.x'],
  ['keys a number', { ...base, keys: 3 }, 'keys'],
  ['keys with an unknown key', { ...base, keys: { dir: 'k', colour: 1 } }, 'keys.colour'],
  [
    'an unknown key in a file entry',
    { ...base, coreos: { files: [{ src: 'a', dest: '/a', mode: 1 }] } },
    'coreos.files[0].mode',
  ],
  ['a file entry missing dest', { ...base, coreos: { files: [{ src: 'a' }] } }, 'coreos.files[0].dest'],
  [
    'a network gateway not an address',
    { ...base, coreos: { network: { address: '10.0.0.1/8', gateway: 'x' } } },
    'coreos.network.gateway',
  ],
  ['trust anchors a string', { ...base, trust: { anchors: 'root.crt' } }, 'trust.anchors'],
  ['secure config v 2', { ...base, secureConfig: { v: 2 } }, 'secureConfig.v'],
  ['__proto__ key', JSON.parse('{"name":"web","version":"1","__proto__":{"name":"x"}}'), '__proto__'],
];
const published = publishedValidator('image-spec');
for (const [what, json, field, postCheck] of bad) {
  test(`validateImageSpec() rejects ${what} naming ${field}`, (t) => {
    const e = t.throws(() => validateImageSpec(json, { source: 'spec.json' }));
    t.true(isImageError(e, 'E_SPEC_INVALID'));
    t.is((e as { details?: { field?: string } }).details?.field, field);
    t.true(e?.message.includes(`spec.json: ${field}:`), e?.message);
    assertRefused(t, () => validateImageSpec(json, { source: 'spec.json' }), 'E_SPEC_INVALID', field, what);
    // doc/image-spec.schema.json (read by Ajv) refuses what the schema pass refuses.
    t.is(published(json), postCheck === true, 'doc/image-spec.schema.json agrees');
  });
}

test('doc/image-spec.schema.json (Ajv) accepts examples/default/image.json', (t) => {
  t.true(published(JSON.parse(readFileSync(DEFAULT_SPEC, 'utf8'))));
});

test('validateImageSpec() refuses every wrong value at every key path of the default spec with E_SPEC_INVALID', (t) => {
  const valid = JSON.parse(readFileSync(DEFAULT_SPEC, 'utf8')) as unknown;
  assertMutationsRefusedCleanly(
    t,
    valid,
    (x) => validateImageSpec(x, { source: DEFAULT_SPEC }),
    'E_SPEC_INVALID',
  );
});

test('loadImageSpec() reads examples/default and names a missing file', async (t) => {
  const s = await loadImageSpec(DEFAULT_SPEC);
  t.is(s.name, 'milkyway');
  t.deepEqual(s.layers, [join(DEFAULT_SPEC, '..', 'layers', 'web')]);
  const e = await t.throwsAsync(loadImageSpec('/nonexistent/image.json'));
  t.true(isImageError(e, 'E_SPEC_READ'));
});
