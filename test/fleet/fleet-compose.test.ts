// `mway compose up` against the real broker and a real agent (namespace mode): a compose file
// of redis (healthcheck redis-cli ping) and a one-shot app that writes a key with the image's
// redis-cli once redis is healthy (depends_on), listed first so the set must be reordered,
// imported and signed by `mway compose up` itself and installed in ONE signed `layer.install`;
// checked with the image's own redis-cli. Then a set whose second layer is signed by a foreign
// user (taken from --layers DIR): the peer refuses it, removes the first layer it had just
// added, and the operator sees the layer's own code. Then the seed's `mway docker start
// --compose FILE` installs the good set and starts it, disabled at boot, and with --enable
// enabled (the agent's enablement.json).
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import test from 'ava';
import { newIdentity } from '../../keys/index.ts';
import { debianImage } from '../_debian-image.ts';
import { inside, processes } from '../agent/layers/_oci-app.ts';
import { REDIS } from '../agent/layers/_oci-images.ts';
import { makeFleetPki } from '../control/command-fixture.ts';
import { cli, freePort, jsonOut, until } from '../helpers.ts';
import { startAgentPeer, startFleet } from './_fleet.ts';
import { sandboxExecOnPath } from '../agent/services/_sandbox-exec.ts';

const pkiP = makeFleetPki();

const compose = (project: string, image: string, port: number) => `
name: ${project}
services:
  seed:
    image: ${image}
    entrypoint: ["redis-cli", "-p", "${port}", "SET", "${project}:seeded", "yes"]
    depends_on:
      cache: { condition: service_healthy }
    restart: "no"
  cache:
    image: ${image}
    command: ["redis-server", "--bind", "127.0.0.1", "--port", "${port}", "--protected-mode", "no"]
    ports: ["${port}:${port}"]
    volumes: ["cachedata:/data"]
    healthcheck:
      test: ["CMD", "redis-cli", "-p", "${port}", "ping"]
      interval: 200ms
volumes:
  cachedata:
`;

interface Report {
  peers: Array<{
    peer: string;
    outcome: string;
    code?: string;
    message?: string;
    output?: { layers: Array<{ name: string; state: string }> };
  }>;
}

test('mway compose up installs a compose project on a group in one signed rollout, dependencies first; a set that fails is undone', async (t) => {
  // Its exec readiness probes (compose healthchecks) are entered by the built helper.
  await sandboxExecOnPath();
  t.timeout(20 * 60_000);
  const p = await pkiP;
  const image = await debianImage(REDIS);
  const f = await startFleet(t, p);
  const user = await newIdentity({
    role: 'user',
    name: 'user',
    outDir: join(f.dir, 'user'),
    issuerKey: p.root.key,
    issuerCert: p.root.cert,
  });
  const peer = await startAgentPeer(t, f, p, p.p1, user);
  const mway = await f.as(p.admin, 'admin', 900_000);
  t.is((await mway('group', 'create', 'kv')).exitCode, 0);
  t.is((await mway('group', 'add', 'kv', 'p1')).exitCode, 0);
  await until('membership held', async () => {
    const rows = jsonOut((await mway('status', '--json')).stdout) as Array<{ groups?: string[] }>;
    return rows.length === 1 && rows.every((x) => x.groups?.includes('kv'));
  });

  const port = await freePort();
  const file = join(f.dir, 'compose.yaml');
  await writeFile(file, compose('kv', image, port));
  const actions = () => {
    // Read from the broker's own database (read-only, beside it in WAL mode): `mway jobs` reads
    // every job's whole command, the layers' pieces included, twice, and on a loaded machine
    // (two TCG guests beside this test) did not answer within mway's 10 s, three times running.
    const db = new DatabaseSync(join(f.dir, 'broker.sqlite'), { readOnly: true });
    try {
      return db
        .prepare("SELECT json_extract(command, '$.payload.action') AS action FROM jobs ORDER BY created")
        .all()
        .map((r) => String(r.action));
    } finally {
      db.close();
    }
  };
  const up = await mway(
    'compose',
    'up',
    '-f',
    file,
    '--group',
    'kv',
    '--key',
    user.keyPath,
    '--cert',
    user.certPath,
    '--json',
    '--static',
  );
  t.is(up.exitCode, 0, up.stdout + up.stderr);
  const r = jsonOut(up.stdout) as Report;
  // One result for the whole set, its layers in dependency order (cache before seed).
  t.deepEqual(
    r.peers.map((x) => [x.peer, x.outcome, x.output?.layers.map((l) => `${l.name} ${l.state}`)]),
    [['p1', 'ok', ['kv-cache active', 'kv-seed active']]],
  );
  // One signed install for the set; every other job carried a piece of a layer.
  const jobs = actions();
  t.is(jobs.filter((a) => a === 'layer.install').length, 1);
  t.true(jobs.filter((a) => a === 'layer.chunk').length >= 2);

  // The seed ran only after redis answered its healthcheck; its key is there, read with the
  // image's own redis-cli inside the server's root.
  const server = async () => {
    const [pid] = await processes(peer.agent(), 'redis-server');
    if (pid === undefined) throw new Error('no redis-server under the agent');
    return pid;
  };
  await until(
    'the seed wrote its key',
    async () => {
      const [pid] = await processes(peer.agent(), 'redis-server');
      if (pid === undefined) return false;
      const got = await inside(pid, ['-m'], ['redis-cli', '-p', String(port), 'GET', 'kv:seeded']);
      return got.stdout.trim() === 'yes';
    },
    120_000,
  );
  const services = jsonOut((await mway('service', '--peer', 'p1', 'list', '--json', '--static')).stdout) as {
    peers: Array<{ output: Array<{ name: string; state: string; exitCode?: number }> }>;
  };
  t.like(Object.fromEntries((services.peers[0]?.output ?? []).map((s) => [s.name, s.state])), {
    'kv-cache/cache': 'running',
  });

  // A second project whose seed layer a foreign user signed: imported beside a good cache.
  const froot = await newIdentity({ role: 'user-root', name: 'froot2', outDir: join(f.dir, 'froot') });
  const { readCertificates, readPrivateKey } = await import('../../keys/index.ts');
  const foreign = await newIdentity({
    role: 'user',
    name: 'foreign',
    outDir: join(f.dir, 'froot'),
    issuerKey: await readPrivateKey(froot.keyPath),
    issuerCert: (await readCertificates(froot.certPath))[0] as never,
  });
  const port2 = await freePort();
  const file2 = join(f.dir, 'kv2.yaml');
  await writeFile(file2, compose('kv2', image, port2));
  const imp = async (signer: { keyPath: string; certPath: string }, dir: string) => {
    await mkdir(dir, { recursive: true });
    const x = await cli(
      'mway-layer',
      ['import-compose', file2, '--key', signer.keyPath, '--cert', signer.certPath, '-o', dir],
      { timeout: 900_000 },
    );
    t.is(x.exitCode, 0, x.stderr);
  };
  const good = join(f.dir, 'kv2-good');
  const mixed = join(f.dir, 'kv2-mixed');
  await imp(user, good);
  await imp(foreign, mixed);
  await copyFile(join(good, 'kv2-cache.mwl'), join(mixed, 'kv2-cache.mwl'));
  const bad = await mway(
    'compose',
    'up',
    '-f',
    file2,
    '--group',
    'kv',
    '--layers',
    mixed,
    '--json',
    '--static',
  );
  t.is(bad.exitCode, 1, bad.stdout + bad.stderr);
  const br = jsonOut(bad.stdout) as Report;
  t.is(br.peers[0]?.outcome, 'failed');
  t.regex(br.peers[0]?.code ?? '', /^E_(LAYER|CERT|CHAIN)_/);
  t.regex(br.peers[0]?.message ?? '', /Layer 2 of 2 .*not installed: .*; removed again: kv2-cache/);
  const layers = jsonOut((await mway('status', '--peer', 'p1', '--json', '--static')).stdout) as {
    peers: Array<{ output: { layers: Array<{ name: string }> } }>;
  };
  t.deepEqual(layers.peers[0]?.output.layers.map((l) => l.name).sort(), ['kv-cache', 'kv-seed']);
  // The first project kept running through it.
  const again = await inside(await server(), ['-m'], ['redis-cli', '-p', String(port), 'GET', 'kv:seeded']);
  t.is(again.stdout.trim(), 'yes');

  // --layers DIR must hold the file's layers: a missing one is refused before anything is sent.
  const empty = join(f.dir, 'empty');
  await mkdir(empty);
  const missing = await mway('compose', 'up', '-f', file2, '--group', 'kv', '--layers', empty);
  t.is(missing.exitCode, 1);
  t.regex(missing.stderr, /E_COMPOSE_LAYERS: services\.seed: no layer .*kv2-seed\.mwl/);
  const both = await mway(
    'compose',
    'up',
    '-f',
    file2,
    '--group',
    'kv',
    '--layers',
    empty,
    '--key',
    user.keyPath,
  );
  t.is(both.exitCode, 2);
  t.regex(both.stderr, /E_USAGE/);

  // The seed's spelling: `mway docker start --compose FILE` installs the good kv2 set the same
  // way, then starts each service and marks it not to start at boot; --enable marks it to.
  const disabled = async () => {
    const text = await readFile(join(peer.root, 'data', 'services', 'enablement.json'), 'utf8');
    return (JSON.parse(text) as { disabled: string[] }).disabled.filter((n) => n.startsWith('kv2-')).sort();
  };
  const docker = (...more: string[]) =>
    mway(
      'docker',
      'start',
      '--compose',
      file2,
      '--group',
      'kv',
      '--layers',
      good,
      '--json',
      '--static',
      ...more,
    );
  const started = await docker();
  t.is(started.exitCode, 0, started.stdout + started.stderr);
  t.deepEqual(await disabled(), ['kv2-cache/cache', 'kv2-seed/seed']);
  // One report a job: the set's install, then each service's boot mark and start, cache first.
  const jobsOf = (out: string) =>
    [...out.matchAll(/"action": ?"((?:layer|service)\.[a-z]+)"/g)].map((m) => m[1]);
  t.deepEqual(jobsOf(started.stdout), [
    'layer.install',
    'service.disable',
    'service.start',
    'service.disable',
    'service.start',
  ]);
  const kv2 = async () => {
    const pids = await processes(peer.agent(), 'redis-server');
    for (const pid of pids) {
      const got = await inside(pid, ['-m'], ['redis-cli', '-p', String(port2), 'GET', 'kv2:seeded']);
      if (got.stdout.trim() === 'yes') return true;
    }
    return false;
  };
  await until('kv2 seeded its key', kv2, 120_000);
  const enabled = await docker('--enable');
  t.is(enabled.exitCode, 0, enabled.stdout + enabled.stderr);
  t.deepEqual(await disabled(), []);
  t.deepEqual(jobsOf(enabled.stdout), [
    'layer.install',
    'service.enable',
    'service.start',
    'service.enable',
    'service.start',
  ]);
  // --compose is its file flag.
  const noFile = await mway('docker', 'start', '--group', 'kv', '--layers', good);
  t.is(noFile.exitCode, 2);
  t.regex(noFile.stderr, /Give the compose file with --compose FILE/);
});
