// The published doc/*.schema.json are what scripts/schemas.ts emits from the code's schemas,
// and common/schema.ts's building blocks refuse what Valibot alone would let through.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { check, configObject, int, keyPathOf, list, object, record, text, v } from '../../common/schema.ts';
import { DOC, FORMATS, schemaText } from '../../scripts/schemas.ts';
import { deep } from '../schema-fixture.ts';

for (const f of FORMATS) {
  test(`doc/${f.name}.schema.json is what npm run schemas emits`, async (t) => {
    const have = await readFile(join(DOC, `${f.name}.schema.json`), 'utf8');
    t.is(have, schemaText(f), `doc/${f.name}.schema.json is stale: run npm run schemas`);
  });
}

const S = configObject({
  n: v.optional(int(1, 10), 5),
  name: v.exactOptional(text({ pattern: /^[a-z]+$/, hint: 'must be lower-case letters' })),
  tags: v.optional(list(text(), 2), []),
  map: v.exactOptional(record(v.string(), int(0, 1))),
  sub: v.optional(object({ ok: v.optional(v.boolean(), true) }), {}),
  any: v.exactOptional(v.unknown()),
});

function problem(x: unknown): string {
  const r = check(S, x);
  return r.ok ? 'ok' : `${r.issue.keyPath}: ${r.issue.problem}`;
}

test('check() fills defaults and accepts $schema', (t) => {
  const r = check(S, { $schema: '../doc/x.schema.json' });
  t.deepEqual(r, { ok: true, value: { $schema: '../doc/x.schema.json', n: 5, tags: [], sub: { ok: true } } });
});

test('check() names the key path and what is wrong, in the house style', (t) => {
  t.is(problem([]), '(top level): expected an object, got an array');
  t.is(problem({ sub: [] }), 'sub: expected an object, got an array');
  t.is(problem({ map: [1] }), 'map: expected an object, got an array');
  t.is(problem({ colour: 1 }), 'colour: unknown key');
  t.is(problem({ sub: { ok: true, x: 1 } }), 'sub.x: unknown key');
  t.is(problem({ n: 0 }), 'n: expected an integer from 1 to 10, got 0');
  t.is(problem(JSON.parse('{"n": 1e999}')), 'n: expected an integer from 1 to 10, got Infinity');
  t.is(problem({ n: 2 ** 60 }), `n: expected an integer from 1 to 10, got ${2 ** 60}`);
  t.is(problem({ n: '5' }), 'n: expected an integer from 1 to 10, got "5"');
  t.is(problem({ name: 'Ab' }), 'name: "Ab" must be lower-case letters');
  t.is(problem({ tags: ['a', 'b', 'c'] }), 'tags: expected at most 2 items, got 3');
  t.is(problem({ tags: ['a', 3] }), 'tags[1]: expected a non-empty string, got 3');
  t.is(problem({ map: { 'a b': 2 } }), 'map["a b"]: expected an integer from 0 to 1, got 2');
  t.is(problem({ sub: { ok: 'yes' } }), 'sub.ok: expected boolean, got "yes"');
  t.is(problem({ name: 'x'.repeat(5000) }), `name: expected at most 4096 characters, got 5000`);
});

test('check() refuses __proto__ as an unknown key and takes a 100,000-deep value in an unknown slot', (t) => {
  t.is(problem(JSON.parse('{"__proto__": {"n": 1}}')), '__proto__: unknown key');
  t.is(problem({ any: deep(100_000) }), 'ok');
  t.is(problem({ sub: deep(100_000) }), 'sub.a: unknown key');
});

test('keyPathOf() writes odd keys as JSON in brackets', (t) => {
  t.is(keyPathOf(undefined), '(top level)');
  t.is(keyPathOf([], 'x'), 'x');
});
