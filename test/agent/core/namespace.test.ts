import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cli } from '../../helpers.ts';
import { makePki, makeRoot, startAgent } from '../_namespace.ts';

const SIGRTMIN = 34;

test('namespace mode: boots on a verified secure config and exits 0 on SIGTERM', async (t) => {
  const pki = await makePki(t);
  const r = await makeRoot(t, pki);
  const a = startAgent(t, r);
  await a.waitFor(/secure config verified, signed by user \(user\)/);
  await a.waitFor(/boot done: 0 services/);
  t.regex(a.output(), /namespace mode/);
  await a.kill('SIGTERM');
  t.is(await a.exit, 0);
  t.regex(a.output(), /shutting down \(poweroff\): SIGTERM received/);
  t.regex(a.output(), /shutdown done/);
});

test('namespace mode: a tampered secure config starts nothing, stays up, and SIGRTMIN+5 exits with the reboot status', async (t) => {
  const pki = await makePki(t);
  const r = await makeRoot(t, pki, { secure: { v: 1, groups: {}, hostname: 'a' } });
  const file = join(r.root, 'config', 'secure.json');
  const { readFile } = await import('node:fs/promises');
  await writeFile(file, (await readFile(file, 'utf8')).replace('"hostname":"a"', '"hostname":"b"'));
  const a = startAgent(t, r);
  await a.waitFor(/not starting any service: E_SECURE_CONFIG: .*does not verify/);
  await new Promise((res) => setTimeout(res, 500));
  t.is(a.proc.exitCode, null);
  await a.kill(SIGRTMIN + 5);
  t.is(await a.exit, 133);
});

test('namespace mode: SIGRTMIN+4 powers off (exit 0) and SIGINT reboots (exit 133)', async (t) => {
  const pki = await makePki(t);
  const r = await makeRoot(t, pki);
  const a = startAgent(t, r);
  await a.waitFor(/boot done/);
  await a.kill(SIGRTMIN + 4);
  t.is(await a.exit, 0);
  t.regex(a.output(), /SIGRTMIN\+4 received/);
  const b = startAgent(t, r);
  await b.waitFor(/boot done/);
  await b.kill('SIGINT');
  t.is(await b.exit, 133);
});

test('milkyway-agent names the bad key of an invalid agent config and exits non-zero', async (t) => {
  const dir = (await makeRoot(t, await makePki(t))).root;
  const config = join(dir, 'bad.json');
  await writeFile(config, JSON.stringify({ dataDir: 'relative/path' }));
  const r = await cli('milkyway-agent', ['--root', dir, '--config', config, '--mode', 'namespace']);
  t.is(r.exitCode, 1);
  t.regex(r.stderr, /E_CONFIG_INVALID: Cannot read agent config .*: dataDir: expected an absolute path/);
  await writeFile(config, JSON.stringify({ dbus: { adress: 'x' } }));
  const r2 = await cli('milkyway-agent', ['--root', dir, '--config', config, '--mode', 'namespace']);
  t.regex(r2.stderr, /: dbus\.adress: unknown key/);
});

test('namespace mode: the control section is handed to the peer link; a bad one is reported and the agent stays up', async (t) => {
  const r = await makeRoot(t, await makePki(t), { config: { control: { broker: 42 } } });
  const a = startAgent(t, r);
  await a.waitFor(/cannot start the peer link: E_\w+/);
  await a.kill('SIGTERM');
  t.is(await a.exit, 0);
});

test('namespace mode: SIGHUP re-reads the secure config (a fixed config starts the boot that was refused)', async (t) => {
  const pki = await makePki(t);
  const r = await makeRoot(t, pki);
  const file = join(r.root, 'config', 'secure.json');
  const good = await (await import('node:fs/promises')).readFile(file);
  await writeFile(file, 'not an envelope');
  const a = startAgent(t, r);
  await a.waitFor(/not starting any service: E_SECURE_CONFIG/);
  await writeFile(file, good);
  await a.kill('SIGHUP');
  await a.waitFor(/reloading config and layers/);
  await a.waitFor(/secure config verified|reload failed/);
  t.notRegex(a.output(), /reload failed/);
  await a.kill('SIGTERM');
  t.is(await a.exit, 0);
});
