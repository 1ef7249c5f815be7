// `mway` fleet commands on bad input: usage errors exit 2 with E_USAGE before anything is
// sent; a missing operator config names its file; config init refuses a non-operator cert; a
// broker address where nothing listens is E_BROKER_UNREACHABLE naming it, not a distrusted broker.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { cli, freePort, jsonOut, tempDir } from '../../helpers.ts';
import { makeFleetPki } from '../command-fixture.ts';

const pkiP = makeFleetPki();

test('mway fleet commands reject bad flags with E_USAGE and exit 2', async (t) => {
  const dir = await tempDir(t);
  const env = { MWAY_CONFIG_DIR: join(dir, 'none') };
  const cases: string[][] = [
    ['service', '--group', 'web', 'bogus', 'x'],
    ['service', '--group', 'web', 'restart'],
    ['service', '--group', 'web', '--peer', 'p1', 'restart', 'x'],
    ['service', '--target', 'group:../x', 'restart', 'x'],
    ['service', '--group', 'web', '--batch', '0', 'restart', 'x'],
    ['service', '--group', 'web', '--max-fail', '200%', 'restart', 'x'],
    ['service', '--group', 'web', '--timeout', '0', 'restart', 'x'],
    ['run', '--group', 'web'],
    ['secrets', '--group', 'web', '--secret-group', 'app', '--values', 'novalue'],
  ];
  for (const args of cases) {
    const r = await cli('mway', args, { env });
    t.is(r.exitCode, 2, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, /E_USAGE|E_TARGET_INVALID/, args.join(' '));
  }
});

test('a fleet command without operator config names the missing file', async (t) => {
  const dir = await tempDir(t);
  const r = await cli('mway', ['status'], { env: { MWAY_CONFIG_DIR: join(dir, 'none') } });
  t.is(r.exitCode, 1);
  t.regex(r.stderr, /E_CONFIG: Cannot read .*none\/config\.json.*mway config init/);
});

test('mway config init refuses a certificate that is not an operator certificate', async (t) => {
  const p = await pkiP;
  const dir = await tempDir(t);
  const r = await cli(
    'mway',
    [
      'config',
      'init',
      '--broker',
      '127.0.0.1:1',
      '--key',
      p.p1.keyPath,
      '--cert',
      p.p1.certPath,
      '--anchor',
      p.root.certPath,
    ],
    {
      env: { MWAY_CONFIG_DIR: dir },
    },
  );
  t.is(r.exitCode, 1);
  t.regex(r.stderr, /E_CONFIG: .*not an operator certificate \(role peer\)/);
});

test('mway status against an address where no broker listens: E_BROKER_UNREACHABLE naming host:port, exit 1', async (t) => {
  const p = await pkiP;
  const dir = await tempDir(t);
  const port = await freePort();
  await writeFile(
    join(dir, 'config.json'),
    JSON.stringify({
      broker: `127.0.0.1:${port}`,
      fleet: 'prod',
      key: p.admin.keyPath,
      cert: p.admin.certPath,
      anchors: [p.root.certPath],
    }),
  );
  const r = await cli('mway', ['status', '--json'], { env: { MWAY_CONFIG_DIR: dir } });
  t.is(r.exitCode, 1, r.stdout + r.stderr);
  const out = jsonOut(r.stdout);
  t.is(out.ok, false);
  t.is(out.error.code, 'E_BROKER_UNREACHABLE');
  t.regex(out.error.message, new RegExp(`127\\.0\\.0\\.1:${port}.*ECONNREFUSED`));
  const human = await cli('mway', ['status'], { env: { MWAY_CONFIG_DIR: dir } });
  t.is(human.exitCode, 1);
  t.regex(human.stderr, /E_BROKER_UNREACHABLE: Cannot connect to broker 127\.0\.0\.1:\d+: .*ECONNREFUSED/);
});
