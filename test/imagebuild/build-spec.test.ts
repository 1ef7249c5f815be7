// The image spec: defaults, path resolution, and errors that name the offending key.
import test from 'ava';
import { join } from 'node:path';
import { isImageError } from '../../imagebuild/image-error.ts';
import { DEFAULT_SPEC, loadImageSpec, validateImageSpec } from '../../imagebuild/image-spec.ts';

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

const bad: [string, unknown, string][] = [
  ['unknown top-level key', { ...base, colour: 1 }, 'colour'],
  ['bad name', { ...base, name: 'Web Server' }, 'name'],
  ['missing version', { name: 'web' }, 'version'],
  ['other architecture', { ...base, architecture: 'arm64' }, 'architecture'],
  ['kernel with both', { ...base, kernel: { package: 'linux-image-amd64', deb: 'x.deb' } }, 'kernel'],
  ['kernel glob', { ...base, kernel: { package: 'linux-image-*' } }, 'kernel.package'],
  ['layer not a string', { ...base, layers: ['a', 3] }, 'layers[1]'],
  ['partition size', { ...base, partitions: { data: -1 } }, 'partitions.data'],
  ['unknown partition', { ...base, partitions: { swap: 4 } }, 'partitions.swap'],
  ['relative binary', { ...base, coreos: { binaries: ['bin/x'] } }, 'coreos.binaries[0]'],
  [
    'file dest escapes',
    { ...base, coreos: { files: [{ src: 'a', dest: '/etc/../../x' }] } },
    'coreos.files[0].dest',
  ],
  ['bad address', { ...base, coreos: { network: { address: '10.0.2.15' } } }, 'coreos.network.address'],
  ['roothash on the cmdline', { ...base, coreos: { cmdline: ['mway.roothash=00'] } }, 'coreos.cmdline[0]'],
  ['secure config key', { ...base, secureConfig: { hostnme: 'x' } }, 'secureConfig.hostnme'],
  ['keys.generate type', { ...base, keys: { dir: 'k', generate: 'yes' } }, 'keys.generate'],
];
for (const [what, json, field] of bad) {
  test(`validateImageSpec() rejects ${what} naming ${field}`, (t) => {
    const e = t.throws(() => validateImageSpec(json, { source: 'spec.json' }));
    t.true(isImageError(e, 'E_SPEC_INVALID'));
    t.is((e as { details?: { field?: string } }).details?.field, field);
    t.true(e?.message.includes(`spec.json: ${field}:`), e?.message);
  });
}

test('loadImageSpec() reads examples/default and names a missing file', async (t) => {
  const s = await loadImageSpec(DEFAULT_SPEC);
  t.is(s.name, 'milkyway');
  t.deepEqual(s.layers, [join(DEFAULT_SPEC, '..', 'layers', 'web')]);
  const e = await t.throwsAsync(loadImageSpec('/nonexistent/image.json'));
  t.true(isImageError(e, 'E_SPEC_READ'));
});
