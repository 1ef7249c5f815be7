import test from 'ava';
import { defineCommand } from 'citty';
import { runCli } from '../../common/cli.ts';
import { MilkyWayError } from '../../common/error.ts';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) }, out, err };
}

const root = defineCommand({
  meta: { name: 'demo' },
  subCommands: {
    fail: defineCommand({
      meta: { name: 'fail' },
      args: { json: { type: 'boolean' } },
      run() {
        throw new MilkyWayError('E_DEMO', 'Cannot demo: it broke', { path: 'x.bin' });
      },
    }),
    crash: defineCommand({
      meta: { name: 'crash' },
      run() {
        throw new Error('kaput');
      },
    }),
    check: defineCommand({ meta: { name: 'check' }, run: () => 1 }),
  },
});

test('runCli() prints one line with the code and path, and exits 1', async (t) => {
  const c = capture();
  t.is(await runCli(root, ['fail'], c.io), 1);
  t.deepEqual(c.err, ['demo: E_DEMO: Cannot demo: it broke (x.bin)\n']);
});

test('runCli() prints the error as JSON with --json', async (t) => {
  const c = capture();
  t.is(await runCli(root, ['fail', '--json'], c.io), 1);
  t.deepEqual(JSON.parse(c.out.join('')), {
    ok: false,
    error: { code: 'E_DEMO', message: 'Cannot demo: it broke', path: 'x.bin' },
  });
});

test('runCli() marks unexpected errors as internal with exit 70 and no stack', async (t) => {
  const c = capture();
  t.is(await runCli(root, ['crash'], c.io), 70);
  t.regex(c.err.join(''), /E_INTERNAL: kaput/);
  t.notRegex(c.err.join(''), /at .*cli\.test\.ts/);
});

test('runCli() passes a command’s numeric result through as the exit code', async (t) => {
  t.is(await runCli(root, ['check'], capture().io), 1);
});

test('runCli() shows the usage of the subcommand --help is asked for', async (t) => {
  const c = capture();
  t.is(await runCli(root, ['fail', '--help'], c.io), 0);
  t.regex(c.out.join(''), /demo fail/);
});
