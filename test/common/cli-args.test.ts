import test from 'ava';
import { runCli } from '../../common/cli.ts';
import { parseStrict, values } from '../../common/cli-args.ts';
import { UsageError } from '../../common/usage-error.ts';
import runVerb from '../../control/operator/cli/run.ts';
import { command as mway } from '../../control/operator/bin/mway.ts';

const table = {
  json: { type: 'boolean' },
  out: { type: 'string', alias: 'o' },
  mode: { type: 'enum', options: ['a', 'b'] as string[] },
  count: { type: 'string', numeric: 'integer' },
  trust: { type: 'string', repeatable: true },
  'dry-run': { type: 'boolean' },
  file: { type: 'positional', required: true },
} as const;

function refused(t: import('ava').ExecutionContext, argv: string[], reason: string, where?: string) {
  const e = t.throws(() => parseStrict(table, argv), { instanceOf: UsageError }, argv.join(' '));
  t.is(e?.code, 'E_USAGE');
  t.is(e?.exitCode, 2);
  t.is(e?.reason as string | undefined, reason, `${argv.join(' ')}: ${e?.message}`);
  if (where !== undefined) t.is(e?.path, where);
}

test('parseStrict() refuses unknown flags, missing and bad values, repeats and extra words', (t) => {
  refused(t, ['f', '--frobnicate'], 'unknown-flag', '--frobnicate');
  refused(t, ['f', '-x'], 'unknown-flag', '-x');
  refused(t, ['f', '--out'], 'missing-value', '--out');
  refused(t, ['f', '-o'], 'missing-value', '-o');
  refused(t, ['f', '--out', '--json'], 'missing-value', '--out');
  refused(t, ['f', '--out='], 'missing-value', '--out');
  refused(t, ['f', '--json=yes'], 'bad-value', '--json');
  refused(t, ['f', '--mode', 'c'], 'bad-value', '--mode');
  refused(t, ['f', '--count', '3x'], 'bad-value', '--count');
  refused(t, ['f', '--out', 'a', '--out', 'b'], 'repeated-flag', '--out');
  refused(t, ['f', 'g'], 'unexpected-argument', 'g');
  refused(t, ['f', '--', '-la'], 'unexpected-argument', '-la');
  refused(t, [], 'missing-argument', 'FILE');
});

test('parseStrict() gives each flag under its kebab and camel name, repeatable ones as lists', (t) => {
  const a = parseStrict(table, ['--trust', 'x', 'f', '--trust=y', '-o', 'out.bin', '--dry-run', '--no-json']);
  t.is(a.file, 'f');
  t.is(a.out, 'out.bin');
  t.deepEqual(values(a.trust), ['x', 'y']);
  t.true(a['dry-run']);
  t.true(a.dryRun);
  t.false(a.json);
  t.deepEqual(values(parseStrict(table, ['f']).trust), []);
});

test('parseStrict() reads a long alias as its flag; both names together are a repeat, not a dropped value', (t) => {
  const aliased = {
    group: { type: 'string', alias: 'peer-group' },
    crl: { type: 'string', alias: 'revocations', repeatable: true },
  } as const;
  t.is(parseStrict(aliased, ['--peer-group', 'web']).group, 'web');
  t.is(parseStrict(aliased, ['--group', 'web']).group, 'web');
  for (const argv of [
    ['--group', 'a', '--peer-group', 'b'],
    ['--peer-group', 'a', '--group', 'b'],
    ['--peer-group', 'a', '--peer-group', 'b'],
  ]) {
    const e = t.throws(() => parseStrict(aliased, argv), { instanceOf: UsageError }, argv.join(' '));
    t.is(e?.reason as string | undefined, 'repeated-flag', argv.join(' '));
    t.is(e?.path, '--group');
  }
  t.deepEqual(values(parseStrict(aliased, ['--crl', 'x', '--revocations', 'y', '--crl', 'z']).crl), [
    'x',
    'z',
    'y',
  ]);
});

test('`--` passes the rest on verbatim to a verb with a variadic positional (mway run)', async (t) => {
  const args = typeof runVerb.args === 'object' ? runVerb.args : {};
  const a = parseStrict(args as never, ['--group', 'web', '--', 'ls', '-la', '/tmp', '--help']);
  t.deepEqual(a._, ['ls', '-la', '/tmp', '--help']);
  t.is(a.group, 'web');
  // Without `--` a flag meant for the remote command is ours, and refused, not eaten.
  const e = t.throws(() => parseStrict(args as never, ['--group', 'web', 'ls', '-la', '/tmp']));
  t.regex(String(e?.message), /Unknown flag -l/);
  // --help after -- is the remote command's, not a request for our help.
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s), colour: false };
  t.is(await runCli(mway, ['run', '--help'], io), 0);
  t.regex(out.join(''), /USAGE mway run .*\[-- ARG…\]/);
  t.regex(out.join(''), /after -- is passed on verbatim/);
});

test('mway audit --head is checked by --verify only and must be a hash; mway install --reboot is refused', async (t) => {
  const run = async (argv: string[]) => {
    const err: string[] = [];
    const code = await runCli(mway, argv, { out: () => {}, err: (s) => void err.push(s), colour: false });
    return { code, err: err.join('') };
  };
  const h = await run(['audit', '--head', 'a'.repeat(64)]);
  t.is(h.code, 2);
  t.regex(h.err, /E_USAGE: --head is checked by --verify only/);
  const bad = await run(['audit', '--verify', '--head', 'nothex']);
  t.is(bad.code, 2);
  t.regex(bad.err, /E_USAGE: --head nothex: expected the 64 hex digits/);
  const reboot = await run(['install', '--group', 'web', 'x.mwl', '--reboot']);
  t.is(reboot.code, 2);
  t.regex(reboot.err, /E_USAGE: Unknown flag --reboot/);
  const verb = await run(['frobnicate']);
  t.is(verb.code, 2);
  t.regex(verb.err, /E_USAGE: Unknown command frobnicate; one of: keys, config/);
});
