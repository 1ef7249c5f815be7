// `mway` fleet commands on bad input: usage errors exit 2 with E_USAGE before anything is
// sent; a missing operator config names its file; config init refuses a non-operator cert.
import { join } from 'node:path';
import test from 'ava';
import { cli, tempDir } from '../../helpers.ts';
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
