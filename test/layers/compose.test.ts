// parseCompose: a compose file's services mapped to what a layer holds, and every key a layer
// cannot hold refused with its code and compose key path; import-compose from the CLI refuses
// before anything is written; a shared volume imported from a real image becomes the group's data.
// (Running real images: test/agent/layers/oci-compose.test.ts.)

import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { LayerError, parseCompose, readLayer, validateManifest } from '../../layers/index.ts';
import { debianImage } from '../_debian-image.ts';
import { REDIS } from '../agent/layers/_oci-images.ts';
import { cli, jsonOut, tempDir } from '../helpers.ts';
import { pki } from './fixture.ts';

const FULL = `
name: shop
x-common: &common
  restart: unless-stopped
services:
  db:
    <<: *common
    image: ./images/postgres.tar
    environment:
      POSTGRES_PASSWORD: "pa$$word"
      PGDATA: /var/lib/postgresql/data
    ports: ["5432:5432"]
    volumes: ["dbdata:/var/lib/postgresql/data", "/var/log/extra/"]
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -h 127.0.0.1"]
      interval: 500ms
      retries: 5
    stop_signal: SIGINT
    stop_grace_period: 1m30s
  app:
    image: docker://registry.example:5000/app:1.2.3
    entrypoint: psql
    command: 'host=127.0.0.1 -c "SELECT 1"'
    user: "1000:1000"
    working_dir: /srv
    environment: ["PGPASSWORD=x", "MODE=test"]
    depends_on:
      db: { condition: service_healthy }
    restart: "no"
    cap_drop: [ALL]
    cap_add: [net_bind_service]
    labels: { team: web }
  cache:
    image: redis:7
    ports: [{ target: 6379, published: "6379" }]
    depends_on: [db]
    restart: on-failure:3
volumes:
  dbdata: {}
`;

test('parseCompose() maps services, their image overrides, readiness, ordering and capabilities; the rest is listed', (t) => {
  const p = parseCompose(FULL, 'ignored');
  t.is(p.name, 'shop');
  const [db, app, cache] = p.services;
  t.like(db, {
    name: 'db',
    image: './images/postgres.tar',
    config: { Env: ['POSTGRES_PASSWORD=pa$word', 'PGDATA=/var/lib/postgresql/data'], StopSignal: 'SIGINT' },
    volumes: ['/var/lib/postgresql/data', '/var/log/extra'],
    service: {
      restart: 'always',
      timeoutStopSec: 90,
      readiness: { type: 'exec', command: ['/bin/sh', '-c', 'pg_isready -h 127.0.0.1'], intervalSec: 0.5 },
    },
  });
  t.deepEqual(app?.config, {
    Entrypoint: ['psql'],
    Cmd: ['host=127.0.0.1', '-c', 'SELECT 1'],
    User: '1000:1000',
    WorkingDir: '/srv',
    Env: ['PGPASSWORD=x', 'MODE=test'],
  });
  t.deepEqual([app?.after, app?.requires], [['db'], ['db']]);
  t.deepEqual([app?.capDrop, app?.capAdd], [['ALL'], ['CAP_NET_BIND_SERVICE']]);
  t.is(app?.service.restart, 'no');
  t.like(cache, { image: 'redis:7', after: ['db'], requires: ['db'] });
  t.deepEqual(cache?.service.readiness, { type: 'tcp', port: 6379 });
  const notes = p.services.flatMap((s) => s.notes).join('\n');
  t.regex(notes, /services\.db\.restart: unless-stopped is always/);
  t.regex(notes, /services\.db\.healthcheck\.retries: not mapped/);
  t.regex(notes, /services\.app\.labels: not mapped/);
  t.regex(notes, /services\.cache\.restart: the retry count 3 is not mapped/);
});

test('parseCompose() takes the project name from the caller when the file has none; an entrypoint alone drops the image Cmd', (t) => {
  const p = parseCompose(
    'services:\n  web:\n    image: nginx\n    entrypoint: ["/bin/sh", "-c", "exec nginx"]\n',
    'proj',
  );
  t.is(p.name, 'proj');
  t.deepEqual(p.services[0]?.config, { Entrypoint: ['/bin/sh', '-c', 'exec nginx'], Cmd: [] });
});

test('parseCompose() makes a volume two services mount the group’s (shared), one only its service mounts private', (t) => {
  const p = parseCompose(
    'services:\n  a: {image: x, volumes: ["v:/d", "own:/o", "/anon"]}\n  b: {image: y, volumes: ["v:/e"]}\nvolumes: {v: {}, own: {}}\n',
    'p',
  );
  const [a, b] = p.services;
  t.deepEqual(a?.shared, [{ volume: 'v', path: '/d' }]);
  t.deepEqual(a?.volumes, ['/o', '/anon']);
  t.deepEqual(b?.shared, [{ volume: 'v', path: '/e' }]);
  t.deepEqual(b?.volumes, []);
});

test('a manifest’s groupVolumes name one of its data.groups and a path no other volume has', (t) => {
  const manifest = (groupVolumes: unknown, groups = ['p'], volumes: string[] = []) => ({
    name: 'p-a',
    version: '1.0.0',
    kind: 'app',
    data: { groups },
    services: [{ name: 'a', execStart: ['/bin/a'], volumes, groupVolumes }],
  });
  const ok = validateManifest(manifest([{ group: 'p', volume: 'v', path: '/d' }]), { source: true });
  t.deepEqual(ok.services[0]?.groupVolumes, [{ group: 'p', volume: 'v', path: '/d' }]);
  for (const [what, m, field] of [
    [
      'another group',
      manifest([{ group: 'q', volume: 'v', path: '/d' }]),
      'services[0].groupVolumes[0].group',
    ],
    [
      'a path of volumes',
      manifest([{ group: 'p', volume: 'v', path: '/d' }], ['p'], ['/d']),
      'services[0].groupVolumes[0].path',
    ],
    [
      'a relative path',
      manifest([{ group: 'p', volume: 'v', path: 'd' }]),
      'services[0].groupVolumes[0].path',
    ],
    [
      'a bad volume name',
      manifest([{ group: 'p', volume: '../v', path: '/d' }]),
      'services[0].groupVolumes[0].volume',
    ],
  ] as const) {
    const e = t.throws(() => validateManifest(m, { source: true }), { instanceOf: LayerError }, what);
    t.is(e?.code, 'E_MANIFEST_INVALID', what);
    t.true(e?.message.includes(field), `${what}: ${e?.message}`);
  }
});

test('parseCompose() maps platform to the layer’s architecture', (t) => {
  const p = parseCompose(
    'services:\n  a: {image: x, platform: linux/arm64}\n  b: {image: x, platform: linux/amd64}\n  c: {image: x}\n',
    'p',
  );
  t.deepEqual(
    p.services.map((s) => s.architecture),
    ['aarch64', 'x86_64', undefined],
  );
});

const svc = (body: string) => `services:\n  web:\n    image: x.tar\n${body}`;
const refused: [string, string, string, string][] = [
  ['YAML syntax', 'services: [', 'E_COMPOSE_YAML', ''],
  ['a duplicate key', 'services:\n  a: {image: x}\n  a: {image: y}\n', 'E_COMPOSE_YAML', ''],
  ['a list at the top', '- a\n', 'E_COMPOSE_YAML', ''],
  ['no services', 'name: x\n', 'E_COMPOSE_INVALID', 'services'],
  ['a top-level networks', 'networks: {}\nservices: {a: {image: x}}\n', 'E_COMPOSE_UNSUPPORTED', 'networks'],
  [
    'a service without image',
    'services:\n  web: {command: ["x"]}\n',
    'E_COMPOSE_INVALID',
    'services.web.image',
  ],
  ['an uppercase service name', 'services:\n  Web: {image: x}\n', 'E_COMPOSE_INVALID', 'services.Web'],
  ['build', svc('    build: .\n'), 'E_COMPOSE_UNSUPPORTED', 'services.web.build'],
  ['an unknown key', svc('    frobnicate: 1\n'), 'E_COMPOSE_UNSUPPORTED', 'services.web.frobnicate'],
  ['privileged', svc('    privileged: true\n'), 'E_COMPOSE_UNSUPPORTED', 'services.web.privileged'],
  [
    'a published port that is not the container port',
    svc('    ports: ["8080:80"]\n'),
    'E_COMPOSE_UNSUPPORTED',
    'services.web.ports[0]',
  ],
  [
    'a port on one address',
    svc('    ports: ["127.0.0.1:80:80"]\n'),
    'E_COMPOSE_UNSUPPORTED',
    'services.web.ports[0]',
  ],
  [
    'a port range',
    svc('    ports: ["8000-8010:8000-8010"]\n'),
    'E_COMPOSE_UNSUPPORTED',
    'services.web.ports[0]',
  ],
  ['a port that is no number', svc('    ports: ["http"]\n'), 'E_COMPOSE_INVALID', 'services.web.ports[0]'],
  ['port 70000', svc('    ports: [70000]\n'), 'E_COMPOSE_INVALID', 'services.web.ports[0]'],
  [
    'a bind mount',
    svc('    volumes: ["./site:/usr/share/nginx/html"]\n'),
    'E_COMPOSE_UNSUPPORTED',
    'services.web.volumes[0]',
  ],
  [
    'a read-only volume',
    svc('    volumes: ["v:/data:ro"]\nvolumes: {v: {}}\n'),
    'E_COMPOSE_UNSUPPORTED',
    'services.web.volumes[0]',
  ],
  [
    'a tmpfs volume',
    svc('    volumes: [{type: tmpfs, target: /x}]\n'),
    'E_COMPOSE_UNSUPPORTED',
    'services.web.volumes[0].type',
  ],
  [
    'an undeclared named volume',
    svc('    volumes: ["v:/data"]\n'),
    'E_COMPOSE_INVALID',
    'services.web.volumes[0]',
  ],
  [
    'a relative volume target',
    svc('    volumes: ["v:data"]\nvolumes: {v: {}}\n'),
    'E_COMPOSE_INVALID',
    'services.web.volumes[0]',
  ],
  [
    'volume options',
    'services: {a: {image: x}}\nvolumes:\n  v: {driver: nfs}\n',
    'E_COMPOSE_UNSUPPORTED',
    'volumes.v.driver',
  ],
  [
    'interpolation',
    svc(`    environment: {A: "\${HOME}"}\n`),
    'E_COMPOSE_UNSUPPORTED',
    'services.web.environment.A',
  ],
  [
    'a variable from the environment',
    svc('    environment: [TOKEN]\n'),
    'E_COMPOSE_UNSUPPORTED',
    'services.web.environment[0]',
  ],
  [
    'a bad variable name',
    svc('    environment: {"A B": x}\n'),
    'E_COMPOSE_INVALID',
    'services.web.environment.A B',
  ],
  ['an unknown restart policy', svc('    restart: sometimes\n'), 'E_COMPOSE_INVALID', 'services.web.restart'],
  [
    'a bad duration',
    svc('    stop_grace_period: soon\n'),
    'E_COMPOSE_INVALID',
    'services.web.stop_grace_period',
  ],
  ['a relative working_dir', svc('    working_dir: srv\n'), 'E_COMPOSE_INVALID', 'services.web.working_dir'],
  [
    'an unterminated quote in command',
    svc('    command: "echo \'hi"\n'),
    'E_COMPOSE_INVALID',
    'services.web.command',
  ],
  [
    'depends_on naming no service',
    svc('    depends_on: [db]\n'),
    'E_COMPOSE_INVALID',
    'services.web.depends_on',
  ],
  [
    'an unknown depends_on condition',
    'services:\n  a: {image: x}\n  web: {image: y, depends_on: {a: {condition: soon}}}\n',
    'E_COMPOSE_INVALID',
    'services.web.depends_on.a.condition',
  ],
  [
    'a healthcheck kind',
    svc('    healthcheck: {test: ["RUN", "x"]}\n'),
    'E_COMPOSE_INVALID',
    'services.web.healthcheck.test[0]',
  ],
  ['cap_add ALL', svc('    cap_add: [ALL]\n'), 'E_COMPOSE_UNSUPPORTED', 'services.web.cap_add'],
  ['a bad capability', svc('    cap_add: ["no such"]\n'), 'E_COMPOSE_INVALID', 'services.web.cap_add[0]'],
  ['networks on a service', svc('    networks: [front]\n'), 'E_COMPOSE_UNSUPPORTED', 'services.web.networks'],
  [
    'a platform no layer runs on',
    svc('    platform: windows/amd64\n'),
    'E_COMPOSE_UNSUPPORTED',
    'services.web.platform',
  ],
];
for (const [what, text, code, field] of refused) {
  test(`parseCompose() refuses ${what}: ${code}${field === '' ? '' : ` at ${field}`}`, (t) => {
    const e = t.throws(() => parseCompose(text, 'p'), { instanceOf: LayerError });
    t.is(e?.code as string | undefined, code, e?.message);
    if (field !== '') {
      t.is(e?.details?.field, field, e?.message);
      t.true(e?.message.includes(`${field}:`), e?.message);
    }
  });
}

test('parseCompose() refuses a billion-laughs alias bomb as YAML, not by running out of memory', (t) => {
  const lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
  for (let i = 0; i < 9; i++) {
    const prev = String.fromCharCode(97 + i);
    const next = String.fromCharCode(98 + i);
    lines.push(`${next}: &${next} [${Array(10).fill(`*${prev}`).join(',')}]`);
  }
  lines.push('services: {web: {image: x, command: *j}}');
  const e = t.throws(() => parseCompose(lines.join('\n'), 'p'), { instanceOf: LayerError });
  t.is(e?.code, 'E_COMPOSE_YAML');
});

test('mway-layer import-compose refuses an unsupported key naming its path, exits 1 and writes nothing', async (t) => {
  const p = await pki();
  const dir = await tempDir(t);
  const file = join(dir, 'compose.yaml');
  await writeFile(file, 'services:\n  web:\n    image: ./web.tar\n    ports: ["8080:80"]\n');
  const out = join(dir, 'out');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(out);
  const args = ['import-compose', file, '--key', p.user.keyPath, '--cert', p.user.certPath, '-o', out];
  const r = await cli('mway-layer', args);
  t.is(r.exitCode, 1);
  t.regex(
    r.stderr,
    /E_COMPOSE_UNSUPPORTED: Cannot import compose file: services\.web\.ports\[0\]: published port 8080 is not the container port 80/,
  );
  const j = await cli('mway-layer', [...args, '--json']);
  t.is(j.exitCode, 1);
  t.like(jsonOut(j.stdout), {
    ok: false,
    error: { code: 'E_COMPOSE_UNSUPPORTED', details: { field: 'services.web.ports[0]' } },
  });
  // A missing image archive: the import's own code, with the service named; nothing left.
  await writeFile(file, 'services:\n  web:\n    image: ./missing.tar\n');
  const m = await cli('mway-layer', args);
  t.is(m.exitCode, 1);
  t.regex(m.stderr, /E_OCI_ARCHIVE: services\.web: .*missing\.tar/);
  t.deepEqual(await readdir(out), []);
  // An output directory that is missing or a file: E_LAYER_WRITE naming it, for both imports.
  for (const [verb, o] of [
    ['import-compose', join(dir, 'no', 'such')],
    ['import-compose', file],
    ['import-oci', join(dir, 'no', 'such.mwl')],
    ['import-oci', join(file, 'x.mwl')],
  ] as const) {
    const w = await cli('mway-layer', [verb, file, ...args.slice(2, 6), '-o', o]);
    t.is(w.exitCode, 1, `${verb} -o ${o}: ${w.stderr}`);
    t.regex(w.stderr, /E_LAYER_WRITE: Cannot write .*(does not exist|is a file, not a directory)/);
  }
  // A FIFO as the compose file is refused by type, never read.
  const { execa } = await import('execa');
  await execa('mkfifo', [join(dir, 'fifo.yaml')]);
  const f = await cli('mway-layer', ['import-compose', join(dir, 'fifo.yaml'), ...args.slice(2)]);
  t.is(f.exitCode, 1);
  t.regex(f.stderr, /E_NOT_REGULAR_FILE/);
});

test('mway-layer import-compose makes a volume two services share the project group’s data: groupVolumes in place of the image’s Volume, data.groups the project', async (t) => {
  t.timeout(20 * 60_000);
  const p = await pki();
  const dir = await tempDir(t);
  const image = await debianImage(REDIS);
  const file = join(dir, 'compose.yaml');
  await writeFile(
    file,
    [
      'name: pair',
      'services:',
      `  a: {image: "oci-archive:${image}:latest", volumes: ["shared:/data", "own:/var/own"]}`,
      `  b: {image: "oci-archive:${image}:latest", volumes: ["shared:/srv/peer"]}`,
      'volumes: {shared: {}, own: {}}',
      '',
    ].join('\n'),
  );
  const out = join(dir, 'out');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(out);
  const r = await cli(
    'mway-layer',
    ['import-compose', file, '--key', p.user.keyPath, '--cert', p.user.certPath, '-o', out],
    { timeout: 900_000 },
  );
  t.is(r.exitCode, 0, r.stderr);
  const a = (await readLayer(join(out, 'pair-a.mwl'))).manifest;
  const b = (await readLayer(join(out, 'pair-b.mwl'))).manifest;
  t.deepEqual(a.data.groups, ['pair']);
  t.deepEqual(b.data.groups, ['pair']);
  // The image's Volume /data is the shared one now; its own named volume stays private.
  t.deepEqual(a.services[0]?.volumes, ['/var/own']);
  t.deepEqual(a.services[0]?.groupVolumes, [{ group: 'pair', volume: 'shared', path: '/data' }]);
  // b keeps the image's /data as its private volume and shares at its own path.
  t.deepEqual(b.services[0]?.volumes, ['/data']);
  t.deepEqual(b.services[0]?.groupVolumes, [{ group: 'pair', volume: 'shared', path: '/srv/peer' }]);
});
