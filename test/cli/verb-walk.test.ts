// Walks every verb of every binary (the citty command trees, lazy subcommands resolved) and
// checks the promises of doc/cli.md: --help exits 0 with that verb's usage; an unknown flag
// exits 2 with E_USAGE naming the flag, as one line plus the usage block, or with --json as
// the one failure shape on stdout.
import test from 'ava';
import type { CommandDef } from 'citty';
import { command as agent } from '../../agent/bin/milkyway-agent.ts';
import { type AnyCommand, loadCommand, runCli } from '../../common/cli.ts';
import { cliFailureFormat } from '../../common/cli-failure.ts';
import { command as broker } from '../../control/broker/bin/milkywaysrvd.ts';
import { command as mway } from '../../control/operator/bin/mway.ts';
import { command as image } from '../../imagebuild/bin/mway-image.ts';
import { command as layer } from '../../layers/bin/mway-layer.ts';
import { VERB_RESULTS } from '../../scripts/cli-results.ts';
import { cli } from '../helpers.ts';

const ROOTS: Record<string, AnyCommand> = {
  mway,
  milkywaysrvd: broker,
  'mway-layer': layer,
  'mway-image': image,
  'milkyway-agent': agent,
};

async function resolve<T>(v: unknown): Promise<T> {
  return (typeof v === 'function' ? await (v as () => T)() : await v) as T;
}

/** Every command path under `cmd` (the root itself included), depth first. */
async function verbs(cmd: CommandDef, path: string[] = []): Promise<string[][]> {
  const out: string[][] = [path];
  const subs = await resolve<Record<string, unknown> | undefined>(cmd.subCommands);
  for (const [name, sub] of Object.entries(subs ?? {})) {
    out.push(...(await verbs(await resolve<CommandDef>(sub), [...path, name])));
  }
  return out;
}

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s), colour: false },
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

for (const [bin, root] of Object.entries(ROOTS)) {
  test(`${bin}: every verb has --help, refuses an unknown flag with exit 2 and E_USAGE`, async (t) => {
    const all = await verbs(root);
    t.true(all.length > 1, `${bin} has verbs`);
    for (const path of all) {
      const what = [bin, ...path].join(' ');
      const h = capture();
      t.is(await runCli(root, [...path, '--help'], h.io), 0, `${what} --help`);
      t.true(h.out().includes(`USAGE ${what} `), `${what} --help names the whole path`);
      if (path.length > 0) t.true(h.out().includes(`(${what} v0.1.0)`), `${what} --help has the version`);
      t.false(h.out().includes('\u001B['), `${what} --help has no colour`);

      const u = capture();
      t.is(await runCli(root, [...path, '--frobnicate'], u.io), 2, `${what} --frobnicate`);
      t.regex(u.err(), new RegExp(`^${bin}: E_USAGE: .*--frobnicate`), `${what} --frobnicate`);
      t.regex(u.err(), /USAGE/, `${what} --frobnicate shows the usage block`);

      const j = capture();
      t.is(await runCli(root, [...path, '--frobnicate', '--json'], j.io), 2, `${what} --json`);
      const body = JSON.parse(j.out()) as { ok: boolean; error: Record<string, unknown> };
      t.false(body.ok, what);
      t.is(body.error.code, 'E_USAGE', what);
      t.regex(String(body.error.message), /--frobnicate/, what);
      t.deepEqual(Object.keys(body).sort(), ['error', 'ok'], what);
      t.notThrows(() => cliFailureFormat.parse(body), what);
      t.false('exitCode' in ((body.error.details as object | undefined) ?? {}), what);
    }
  });

  test(`${bin}: every verb has a result schema (doc/cli-result.schema.json), and no other verb does`, async (t) => {
    const table = VERB_RESULTS[bin] ?? {};
    const runnable: string[] = [];
    const walk = async (cmd: CommandDef, path: string[]) => {
      if (cmd.run !== undefined) runnable.push([bin, ...path].join(' '));
      const subs = await resolve<Record<string, unknown> | undefined>(cmd.subCommands);
      for (const [name, sub] of Object.entries(subs ?? {}))
        await walk((await loadCommand(sub, name)) as CommandDef, [...path, name]);
    };
    await walk(root, []);
    for (const v of runnable)
      t.true(Object.hasOwn(table, v), `${v} has no entry in its part's cli/results.ts`);
    t.deepEqual(
      Object.keys(table).filter((v) => !runnable.includes(v)),
      [],
      'entries for verbs the binary does not have',
    );
  });

  test(`${bin}: a real process exits 2 on an unknown flag, with the code on stderr`, async (t) => {
    const r = await cli(bin as 'mway', ['--frobnicate']);
    t.is(r.exitCode, 2, r.stderr);
    t.regex(r.stderr, /E_USAGE: Unknown flag --frobnicate/);
  });
}

// The seed's spelling (milkyway-README: `mway reboot --peer-group virt_net`): wherever a verb of
// mway takes --group, --peer-group is the same flag (doc/how-to-manage-a-fleet.md).
test('mway: every verb that takes --group takes --peer-group as the same flag', async (t) => {
  const named: string[] = [];
  const walk = async (cmd: CommandDef, path: string[]) => {
    const args =
      (await resolve<Record<string, { type?: string; alias?: string | string[] }>>(cmd.args)) ?? {};
    const g = args.group;
    if (g !== undefined && g.type !== 'positional') {
      named.push(path.join(' '));
      const alias = typeof g.alias === 'string' ? [g.alias] : (g.alias ?? []);
      t.true(alias.includes('peer-group'), `mway ${path.join(' ')} --group has no --peer-group`);
      const h = capture();
      t.is(await runCli(mway, [...path, '--help'], h.io), 0);
      t.regex(h.out(), /--peer-group, --group/, `mway ${path.join(' ')} --help`);
    }
    const subs = await resolve<Record<string, unknown> | undefined>(cmd.subCommands);
    for (const [name, sub] of Object.entries(subs ?? {}))
      await walk((await loadCommand(sub, name)) as CommandDef, [...path, name]);
  };
  await walk(mway, []);
  // The walk saw the verbs it is meant to: targeted commands and enrollment's --group.
  for (const v of ['reboot', 'run', 'install', 'peers accept', 'peers token create'])
    t.true(named.includes(v), v);
});

test('help into a pipe has no colour even without NO_COLOR', async (t) => {
  const { execa } = await import('execa');
  const { BINS } = await import('../helpers.ts');
  const env = { ...process.env, NO_COLOR: '', FORCE_COLOR: '', TEST: '', CI: '' };
  const r = await execa(process.execPath, [BINS.mway, 'group', 'add', '--help'], {
    env,
    extendEnv: false,
    timeout: 60_000,
  });
  t.regex(String(r.stdout), /USAGE mway group add/);
  t.false(String(r.stdout).includes('\u001B['));
});
