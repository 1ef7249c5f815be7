// One failure shape for every binary (doc/cli.md): a real failure of each, run as a user
// would with --json, prints exactly {ok: false, error: {code, message, path?, details?}} on
// stdout, with a code the docs list and the exit code kept out of the data; python3-jsonschema
// checks each against the published doc/cli-failure.schema.json. A real success of each binary
// is checked the same way against its verb's entry in doc/cli-result.schema.json.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { cliFailureFormat } from '../../common/cli-failure.ts';
import { verbOf } from '../cli-json.ts';
import { cli, jsonOut, ROOT, tempDir } from '../helpers.ts';

/** python3-jsonschema (Debian) checks `body` against the published doc/cli-failure.schema.json. */
async function schemaErrors(body: unknown): Promise<string> {
  const py = `import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
v = jsonschema.Draft202012Validator(schema)
v.check_schema(schema)
print("\\n".join(e.message for e in v.iter_errors(json.load(sys.stdin))))`;
  const r = await execa('python3', ['-c', py, join(ROOT, 'doc/cli-failure.schema.json')], {
    input: JSON.stringify(body),
    timeout: 60_000,
    reject: false,
  });
  if (r.exitCode !== 0) throw new Error(`python3-jsonschema: ${String(r.stderr)}`);
  return String(r.stdout);
}

const CASES = [
  ['mway', ['install', '--group', 'web', '/nonexistent/app.mwl'], 'E_FILE_READ', 1],
  ['mway', ['status', '--frobnicate'], 'E_USAGE', 2],
  ['mway-layer', ['verify', '--trust', '/nonexistent/root.crt', '/nonexistent/app.mwl'], undefined, 1],
  ['mway-image', ['spec', 'validate', '/nonexistent/spec.json'], 'E_SPEC_READ', 1],
  ['milkywaysrvd', ['audit', '--config', '/nonexistent/broker.json'], 'E_CONFIG', 1],
  [
    'milkyway-agent',
    ['ctl', 'status', '--bus', 'unix:path=/nonexistent/bus'],
    'E_DBUS_UNREACHABLE',
    undefined,
  ],
] as const;

async function documentedCodes(): Promise<Set<string>> {
  const docs = (await readdir(join(ROOT, 'doc'))).filter((f) => /^errors-.*\.md$/.test(f));
  const codes = new Set<string>();
  for (const f of docs)
    for (const m of (await readFile(join(ROOT, 'doc', f), 'utf8')).matchAll(/`(E_[A-Z0-9_]+)`/g))
      codes.add(m[1] as string);
  return codes;
}

for (const [bin, args, code, exit] of CASES) {
  test(`${bin} ${args[0]} --json: the one failure shape`, async (t) => {
    const r = await cli(bin, [...args, '--json'], { timeout: 60_000 });
    t.not(r.exitCode, 0, r.stderr);
    if (exit !== undefined) t.is(r.exitCode, exit);
    const body = jsonOut(r.stdout) as { ok: unknown; error: Record<string, unknown> };
    t.deepEqual(Object.keys(body).sort(), ['error', 'ok']);
    t.is(body.ok, false);
    for (const k of Object.keys(body.error)) t.true(['code', 'message', 'path', 'details'].includes(k), k);
    t.regex(String(body.error.code), /^E_[A-Z0-9_]+$/);
    t.not(body.error.code, 'E_INTERNAL');
    if (code !== undefined) t.is(body.error.code, code);
    t.is(typeof body.error.message, 'string');
    t.false(JSON.stringify(body.error.details ?? {}).includes('exitCode'));
    t.notThrows(() => cliFailureFormat.parse(body));
    t.is(await schemaErrors(body), '', 'doc/cli-failure.schema.json holds it');
    t.true(
      (await documentedCodes()).has(String(body.error.code)),
      `${String(body.error.code)} is documented`,
    );
  });
}

test('doc/cli-failure.schema.json refuses what is not the failure shape (python3-jsonschema)', async (t) => {
  t.is(await schemaErrors({ ok: false, error: { code: 'E_USAGE', message: 'm' } }), '');
  for (const bad of [
    { ok: false, code: 'E_USAGE', message: 'm' },
    { valid: false, error: { code: 'E_USAGE', message: 'm' } },
    { ok: false, error: { code: 'E_USAGE', message: 'm', details: { exitCode: 2 } }, exitCode: 2 },
    { ok: false, error: { code: 'usage', message: 'm' } },
    { ok: false, error: { message: 'm' } },
  ]) {
    t.not(await schemaErrors(bad), '', JSON.stringify(bad));
    t.throws(() => cliFailureFormat.parse(bad), undefined, JSON.stringify(bad));
  }
});

/** python3-jsonschema checks `body` against doc/cli-result.schema.json, `result` against `$defs[key]`. */
async function resultErrors(body: unknown, key: string): Promise<string> {
  const py = `import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
if sys.argv[2] not in schema["$defs"]: sys.exit("no $defs entry " + sys.argv[2])
one = dict(schema, properties=dict(schema["properties"], result={"$ref": "#/$defs/" + sys.argv[2]}))
v = jsonschema.Draft202012Validator(one)
print("\\n".join(e.message for e in v.iter_errors(json.load(sys.stdin))))`;
  const r = await execa('python3', ['-c', py, join(ROOT, 'doc/cli-result.schema.json'), key], {
    input: JSON.stringify(body),
    timeout: 60_000,
    reject: false,
  });
  if (r.exitCode !== 0) throw new Error(`python3-jsonschema: ${String(r.stderr)}`);
  return String(r.stdout);
}

const SUCCESSES: Array<
  [bin: 'mway' | 'mway-layer' | 'mway-image' | 'milkywaysrvd', (d: string) => string[]]
> = [
  ['mway', (d) => ['keys', 'new', '--role', 'user-root', '--name', 'root', '--out', d]],
  ['mway-layer', (d) => ['init', 'app', join(d, 'app')]],
  ['mway-image', () => ['spec', 'validate', join(ROOT, 'examples/default/image.json')]],
  ['milkywaysrvd', (d) => ['nats-user', '--out', join(d, 'u.seed')]],
];

for (const [bin, argv] of SUCCESSES) {
  test(`${bin} ${argv('/d')[0]} --json: the success envelope, as doc/cli-result.schema.json says`, async (t) => {
    const d = await tempDir(t);
    const args = [...argv(d), '--json'];
    const r = await cli(bin, args, { timeout: 60_000, env: { HOME: d } });
    t.is(r.exitCode, 0, r.stdout + r.stderr);
    const body = JSON.parse(r.stdout) as Record<string, unknown>;
    t.deepEqual(Object.keys(body).sort(), ['ok', 'result']);
    t.is(body.ok, true);
    const key = (await verbOf(bin, args)).split(' ').join('.');
    t.is(await resultErrors(body, key), '', key);
    // The published file refuses a result that is not the verb's (python3-jsonschema).
    t.not(await resultErrors({ ok: true, result: 'nonsense' }, key), '', key);
    t.not(await resultErrors({ ok: true }, key), '', 'no result');
  });
}
