// OCI import with real images made by Debian's umoci and converted by skopeo, and
// hand-made hostile layers (traversal, absolute paths, escaping links) that must be refused.

import { createHash } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { pack as tarPack } from 'tar-stream';
import { extractFiles, importOci, verifyLayer } from '../../layers/index.ts';
import { cli, jsonOut, tempDir } from '../helpers.ts';
import { pki } from './fixture.ts';

async function umociImage(dir: string): Promise<{ oci: string; docker: string }> {
  const layout = join(dir, 'img');
  const run = (args: string[]) => execa('umoci', args, { cwd: dir, timeout: 60_000 });
  await run(['init', '--layout', layout]);
  await run(['new', '--image', `${layout}:2.1.0`]);
  const l1 = join(dir, 'l1');
  await mkdir(join(l1, 'usr/bin'), { recursive: true });
  await mkdir(join(l1, 'etc/old'), { recursive: true });
  await writeFile(join(l1, 'usr/bin/app'), '#!/bin/sh\necho app\n');
  await chmod(join(l1, 'usr/bin/app'), 0o755);
  await writeFile(join(l1, 'etc/old/a'), 'a\n');
  await writeFile(join(l1, 'etc/gone'), 'gone\n');
  await symlink('../usr/bin/app', join(l1, 'etc/applink'));
  await execa('mknod', [join(l1, 'etc/null'), 'c', '1', '3']);
  await run(['insert', '--image', `${layout}:2.1.0`, l1, '/']);
  await run(['insert', '--image', `${layout}:2.1.0`, '--whiteout', '/etc/gone']);
  const l3 = join(dir, 'l3');
  await mkdir(l3);
  await writeFile(join(l3, 'b'), 'b\n');
  await run(['insert', '--image', `${layout}:2.1.0`, '--opaque', l3, '/etc/old']);
  await run([
    'config',
    '--image',
    `${layout}:2.1.0`,
    '--config.entrypoint',
    '/usr/bin/app',
    '--config.cmd',
    'serve',
    '--config.env',
    'FOO=bar',
    '--config.workingdir',
    '/usr',
    '--config.user',
    '1000:1000',
    '--config.exposedports',
    '8080/tcp',
    '--config.exposedports',
    '9090/tcp',
    '--config.label',
    'team=web',
    '--config.volume',
    '/data',
    '--config.stopsignal',
    'SIGINT',
  ]);
  const oci = join(dir, 'oci.tar');
  await execa('tar', ['-cf', oci, '-C', layout, '.']);
  const docker = join(dir, 'docker.tar');
  await execa('skopeo', ['copy', `oci:${layout}:2.1.0`, `docker-archive:${docker}:web:2.1.0`], {
    timeout: 60_000,
  });
  return { oci, docker };
}

test('umoci OCI layout and its skopeo docker-archive import to the same payload; whiteouts, opaque dir, dropped device', async (t) => {
  const p = await pki();
  const dir = await tempDir(t);
  const { oci, docker } = await umociImage(dir);
  const a = await importOci({
    archive: oci,
    key: p.user.key,
    chain: p.user.chain,
    out: join(dir, 'a.mwl'),
    name: 'web',
    sourceDateEpoch: 7,
  });
  const b = await importOci({
    archive: docker,
    key: p.user.key,
    chain: p.user.chain,
    out: join(dir, 'b.mwl'),
    sourceDateEpoch: 7,
  });
  t.is(a.format, 'oci');
  t.is(b.format, 'docker');
  t.is(a.imageLayers, 3);
  t.is(b.manifest.name, 'web');
  t.is(b.manifest.version, '2.1.0');
  t.is(a.manifest.payload.verity.rootHash, b.manifest.payload.verity.rootHash);
  t.deepEqual(a.dropped, [
    { layer: 1, path: '/etc/null', reason: 'character-device dropped (layers hold no device nodes)' },
  ]);
  const s = b.manifest.services[0];
  t.deepEqual(s?.execStart, ['/usr/bin/app', 'serve']);
  t.deepEqual(s?.environment, { FOO: 'bar' });
  t.is(s?.workingDirectory, '/usr');
  t.is(s?.user, '1000');
  t.is(s?.group, '1000');
  // The image's StopSignal is KillSignal=; what the image does not say keeps the defaults.
  t.is(s?.killSignal, 'SIGINT');
  t.is(s?.restart, 'on-failure');
  t.is(s?.timeoutStopSec, undefined, 'no StopTimeout: the agent config decides');
  t.deepEqual(s?.readiness, { type: 'tcp', port: 8080, host: '127.0.0.1' });
  t.true(b.unmapped.some((u) => u.startsWith('Labels')));
  // Volumes are the layer's persistent private data at those paths; the root is writable, fresh per start.
  t.false(b.unmapped.some((u) => u.startsWith('Volumes')));
  t.deepEqual(s?.volumes, ['/data']);
  t.is(s?.writableRoot, 'ephemeral');
  // A numeric user the image's /etc/passwd does not name is kept and reported; not root: no capabilities.
  t.true(b.unmapped.some((u) => u.includes('uid 1000 is not in the image')));
  t.deepEqual(s?.capabilityBoundingSet, []);
  t.true(b.unmapped.some((u) => u.includes('9090')));
  await verifyLayer(join(dir, 'b.mwl'), { anchors: [p.userRoot.cert] });
  const x = join(dir, 'x');
  await extractFiles(join(dir, 'b.mwl'), x);
  t.deepEqual((await readdir(join(x, 'etc'))).sort(), ['applink', 'old']);
  t.deepEqual(await readdir(join(x, 'etc/old')), ['b']);
  t.is(await readlink(join(x, 'etc/applink')), '../usr/bin/app');
  t.is(await readFile(join(x, 'usr/bin/app'), 'utf8'), '#!/bin/sh\necho app\n');
});

interface Ent {
  name: string;
  type?: 'file' | 'symlink' | 'link' | 'directory';
  linkname?: string;
  data?: string;
}

async function tarOf(entries: Ent[]): Promise<Buffer> {
  const p = tarPack();
  for (const e of entries) {
    const data = Buffer.from(e.data ?? '');
    const type = e.type ?? 'file';
    const link = e.linkname === undefined ? {} : { linkname: e.linkname };
    if (type === 'file') p.entry({ name: e.name, type, mode: 0o644, size: data.length }, data);
    else p.entry({ name: e.name, type, mode: 0o755, size: 0, ...link }, Buffer.alloc(0));
  }
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A hand-made OCI layout tarball with one layer holding `entries`. */
async function hostileImage(file: string, entries: Ent[]): Promise<void> {
  const blobs = new Map<string, Buffer>();
  const add = (b: Buffer) => {
    const d = createHash('sha256').update(b).digest('hex');
    blobs.set(d, b);
    return { digest: `sha256:${d}`, size: b.length };
  };
  const layer = add(await tarOf(entries));
  const config = add(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Cmd: ['/bin/x'] },
        rootfs: { type: 'layers', diff_ids: [layer.digest] },
      }),
    ),
  );
  const manifest = add(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
      }),
    ),
  );
  const outer: Ent[] = [
    { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
    {
      name: 'index.json',
      data: JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            ...manifest,
            annotations: { 'org.opencontainers.image.ref.name': '1.0.0' },
          },
        ],
      }),
    },
    ...[...blobs].map(([d, b]) => ({ name: `blobs/sha256/${d}`, data: b.toString('latin1') })),
  ];
  // latin1 round-trips arbitrary bytes through the string field.
  const p = tarPack();
  for (const e of outer) {
    const data = Buffer.from(e.data ?? '', e.name.startsWith('blobs/') ? 'latin1' : 'utf8');
    p.entry({ name: e.name, size: data.length, mode: 0o644 }, data);
  }
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  await writeFile(file, Buffer.concat(chunks));
}

const hostile: [string, Ent[], string][] = [
  ['path traversal', [{ name: '../../evil', data: 'x' }], 'E_OCI_PATH'],
  ['absolute path', [{ name: '/tmp/evil', data: 'x' }], 'E_OCI_PATH'],
  [
    'symlink escaping the root',
    [{ name: 'etc/link', type: 'symlink', linkname: '../../../../tmp' }],
    'E_OCI_LINK_ESCAPE',
  ],
  [
    'hard link escaping the root',
    [{ name: 'h', type: 'link', linkname: '../../etc/passwd' }],
    'E_OCI_LINK_ESCAPE',
  ],
  [
    'hard link to an absolute path',
    [{ name: 'h', type: 'link', linkname: '/etc/passwd' }],
    'E_OCI_LINK_ESCAPE',
  ],
  [
    'write through a symlink',
    [
      { name: 'd', type: 'symlink', linkname: '/tmp' },
      { name: 'd/evil', data: 'x' },
    ],
    'E_OCI_PATH',
  ],
];

for (const [what, entries, code] of hostile) {
  test(`OCI layer with ${what} is refused (${code}), nothing written outside, no output left`, async (t) => {
    const p = await pki();
    const dir = await tempDir(t);
    const work = join(dir, 'work');
    await mkdir(work);
    const archive = join(dir, 'img.tar');
    await hostileImage(archive, entries);
    const e = await t.throwsAsync(
      importOci({ archive, key: p.user.key, chain: p.user.chain, out: join(work, 'x.mwl') }),
    );
    t.is((e as { code?: string }).code, code, (e as Error).message);
    t.deepEqual(await readdir(work), []);
    t.deepEqual((await readdir(dir)).sort(), ['img.tar', 'work']);
  });
}

test('mway-layer import-oci --json reports format, service, dropped entries and unmapped settings', async (t) => {
  const p = await pki();
  const dir = await tempDir(t);
  const { docker } = await umociImage(dir);
  const out = join(dir, 'w.mwl');
  const r = await cli('mway-layer', [
    'import-oci',
    docker,
    '--key',
    p.user.keyPath,
    '--cert',
    p.user.certPath,
    '-o',
    out,
    '--json',
    '--version',
    '2.1.1',
  ]);
  t.is(r.exitCode, 0, r.stderr);
  const j = jsonOut(r.stdout) as {
    format: string;
    name: string;
    version: string;
    service: { execStart: string[] };
    dropped: { path: string }[];
    unmapped: string[];
  };
  t.is(j.format, 'docker');
  t.is(j.name, 'web');
  t.is(j.version, '2.1.1');
  t.deepEqual(j.service.execStart, ['/usr/bin/app', 'serve']);
  t.deepEqual(
    j.dropped.map((d) => d.path),
    ['/etc/null'],
  );
  t.true(j.unmapped.length >= 3);
  const v = await cli('mway-layer', ['verify', out, '--trust', p.userRoot.certPath]);
  t.is(v.exitCode, 0, v.stdout + v.stderr);
  // Not an image archive at all: its own code, exit 1, no output file.
  const bogus = join(dir, 'bogus.tar');
  await writeFile(bogus, 'not a tar');
  const b = await cli('mway-layer', [
    'import-oci',
    bogus,
    '--key',
    p.user.keyPath,
    '--cert',
    p.user.certPath,
    '-o',
    join(dir, 'b.mwl'),
  ]);
  t.is(b.exitCode, 1);
  t.regex(b.stderr, /E_OCI_(ARCHIVE|FORMAT)/);
  t.false((await readdir(dir)).includes('b.mwl'));
});

test('mway-layer import-oci --writable-root persistent keeps the service root; inspect shows it; an unknown kind is refused before anything is written', async (t) => {
  const p = await pki();
  const dir = await tempDir(t);
  const { oci } = await umociImage(dir);
  const args = (out: string, kind: string) => [
    'import-oci',
    oci,
    '--key',
    p.user.keyPath,
    '--cert',
    p.user.certPath,
    '-o',
    out,
    '--writable-root',
    kind,
  ];
  const out = join(dir, 'p.mwl');
  const r = await cli('mway-layer', [...args(out, 'persistent'), '--json']);
  t.is(r.exitCode, 0, r.stderr);
  t.is((jsonOut(r.stdout) as { service: { writableRoot: string } }).service.writableRoot, 'persistent');
  const i = await cli('mway-layer', ['inspect', out]);
  t.regex(i.stdout, /writable root persistent/);
  const bad = await cli('mway-layer', args(join(dir, 'q.mwl'), 'yes'));
  t.not(bad.exitCode, 0);
  t.regex(bad.stderr, /E_USAGE.*--writable-root: "yes" is not ephemeral or persistent/);
  t.false((await readdir(dir)).includes('q.mwl'));
});
