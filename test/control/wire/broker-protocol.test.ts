import test from 'ava';
import {
  checkMessage,
  decodeBody,
  encodeFrame,
  FrameDecoder,
  HEADER_SIZE,
  InvalidMessage,
  type Message,
  message,
} from '../../../control/wire/protocol.ts';
import { assertMutationsRefusedCleanly, deep, publishedValidator } from '../../schema-fixture.ts';

const env = { v: 1, type: 'command', payload: { a: 1 }, signatures: [] };

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
  return 'no error';
}

test('encodeFrame/FrameDecoder round-trip messages fed one byte at a time', (t) => {
  const msgs: Message[] = [
    message('hello', { role: 'peer', id: 1 }),
    message('command-submit', {
      id: 2,
      jobId: 'j1',
      command: env,
      targets: ['peer-1', 'peer-2'],
      expiresAt: 'x',
    }),
    message('result', { jobId: 'j1', result: env, outcome: 'ok', text: 'é✓' }),
  ];
  const bytes = Buffer.concat(msgs.map(encodeFrame));
  const d = new FrameDecoder();
  const got: Array<Message | InvalidMessage> = [];
  for (let i = 0; i < bytes.length; i++) got.push(...d.push(bytes.subarray(i, i + 1)));
  t.deepEqual(got, msgs);
  t.is(d.buffered, 0);
});

test('FrameDecoder rejects a header announcing more than the cap before buffering the body', (t) => {
  const d = new FrameDecoder(1024);
  const h = Buffer.alloc(HEADER_SIZE);
  h.writeUInt32BE(1025, 0);
  t.is(
    code(() => d.push(h)),
    'E_FRAME_TOO_LARGE',
  );
  const max = new FrameDecoder();
  h.writeUInt32BE(0xffffffff, 0);
  t.is(
    code(() => max.push(h)),
    'E_FRAME_TOO_LARGE',
  );
});

test('decodeBody() rejects hostile messages with E_PROTOCOL', (t) => {
  const cases: unknown[] = [
    [],
    null,
    { v: 2, kind: 'hello', role: 'peer' },
    { v: 1, kind: 'nope' },
    { v: 1, kind: 'hello' },
    { v: 1, kind: 'hello', role: 'peer', id: -1 },
    { v: 1, kind: 'hello', role: 'peer', id: 1.5 },
    { v: 1, kind: 'command-submit', jobId: 'j', command: env, targets: ['../x'], expiresAt: 'x' },
    { v: 1, kind: 'command-submit', jobId: 'j', command: { v: 1 }, targets: [], expiresAt: 'x' },
    { v: 1, kind: 'command-submit', jobId: 'a'.repeat(129), command: env, targets: [], expiresAt: 'x' },
    { v: 1, kind: 'result', jobId: 'j', result: env, outcome: 'maybe' },
  ];
  for (const c of cases) {
    t.is(
      code(() => decodeBody(Buffer.from(JSON.stringify(c)))),
      'E_PROTOCOL',
      JSON.stringify(c),
    );
  }
  t.is(
    code(() => decodeBody(Buffer.from([0xff, 0xfe]))),
    'E_PROTOCOL',
  );
  t.is(
    code(() => decodeBody(Buffer.from('{"v":1,'))),
    'E_PROTOCOL',
  );
});

test('checkMessage() accepts every broker reply shape it produces', (t) => {
  t.is(checkMessage(message('reply', { re: 3, peers: [] })).kind, 'reply');
  t.is(checkMessage(message('error', { re: 3, code: 'E_X', message: 'm' })).kind, 'error');
});

test('FrameDecoder turns a JSON frame of the wrong shape into InvalidMessage with its id, and stays in sync', (t) => {
  const d = new FrameDecoder();
  const bad = Buffer.from(JSON.stringify({ v: 1, kind: 'result', id: 7, jobId: 'j' }));
  const h = Buffer.alloc(4);
  h.writeUInt32BE(bad.length, 0);
  const out = d.push(Buffer.concat([h, bad, encodeFrame(message('ping', { id: 8 }))]));
  t.true(out[0] instanceof InvalidMessage);
  t.is((out[0] as InvalidMessage).id, 7);
  t.is((out[0] as InvalidMessage).error.code, 'E_PROTOCOL');
  t.is((out[1] as Message).kind, 'ping');
});

const published = publishedValidator('protocol');
const hello = { v: 1, kind: 'hello', role: 'peer', id: 1 };
const submit = {
  v: 1,
  kind: 'command-submit',
  id: 2,
  jobId: 'j1',
  command: env,
  targets: ['p1'],
  expiresAt: 'x',
};

// Hostile messages: each refused with E_PROTOCOL naming the field (err.path), never E_INTERNAL.
const hostile: [string, unknown, string][] = [
  ['an array', [], 'kind'],
  ['a string', 'hello', '(top level)'],
  ['null', null, '(top level)'],
  ['no kind', { v: 1 }, 'kind'],
  ['an unknown kind', { v: 1, kind: 'nope' }, 'kind'],
  ['kind a number', { v: 1, kind: 7 }, 'kind'],
  ['version 2', { ...hello, v: 2 }, 'v'],
  ['no role', { v: 1, kind: 'hello' }, 'role'],
  ['an unknown role', { ...hello, role: 'root' }, 'role'],
  ['a negative id', { ...hello, id: -1 }, 'id'],
  ['a huge id', { ...hello, id: 1e308 }, 'id'],
  ['an unsafe integer id', { ...hello, id: 2 ** 60 }, 'id'],
  ['a fractional re', { ...hello, re: 1.5 }, 're'],
  ['a reply without re', { v: 1, kind: 'reply' }, 're'],
  ['a target that escapes', { ...submit, targets: ['../x'] }, 'targets[0]'],
  ['targets a string', { ...submit, targets: 'p1' }, 'targets'],
  ['a command not an envelope', { ...submit, command: { v: 1 } }, 'command.type'],
  ['a command an array', { ...submit, command: [] }, 'command'],
  [
    'a command without payload',
    { ...submit, command: { v: 1, type: 'command', signatures: [] } },
    'command.payload',
  ],
  ['a deep command', { ...submit, command: deep(50_000) }, 'command.v'],
  ['a 129-character job id', { ...submit, jobId: 'a'.repeat(129) }, 'jobId'],
  ['a batch of 0', { ...submit, batch: 0 }, 'batch'],
  ['a batch as text', { ...submit, batch: '5' }, 'batch'],
  ['maxFail huge', { ...submit, maxFail: 1e308 }, 'maxFail'],
  ['watch as text', { ...submit, watch: 'yes' }, 'watch'],
  ['an outcome of maybe', { v: 1, kind: 'result', jobId: 'j', result: env, outcome: 'maybe' }, 'outcome'],
  [
    'a membership op of move',
    { v: 1, kind: 'membership-deliver', group: 'g', peerId: 'p', op: 'move' },
    'op',
  ],
  [
    'error details an array',
    { v: 1, kind: 'error', re: 1, code: 'E_X', message: 'm', details: [] },
    'details',
  ],
  ['audit-get from as text', { v: 1, kind: 'audit-get', id: 3, from: '1' }, 'from'],
  ['an enroll request not an object', { v: 1, kind: 'enroll-request', id: 1, request: 'x' }, 'request'],
];
for (const [what, m, field] of hostile) {
  test(`checkMessage() refuses ${what} naming ${field}`, (t) => {
    const e = t.throws(() => checkMessage(m)) as { code?: string; path?: string; message: string };
    t.is(e.code, 'E_PROTOCOL', e.message);
    t.is(e.path, field, e.message);
    t.true(e.message.includes(`: ${field}: `), e.message);
    t.false(published(m), 'doc/protocol.schema.json (Ajv) refuses it too');
  });
}

test('checkMessage() keeps unknown fields (version skew) and doc/protocol.schema.json accepts what it accepts', (t) => {
  for (const m of [
    hello,
    submit,
    { ...hello, future: { x: 1 } },
    { v: 1, kind: 'reply', re: 3, peers: [] },
  ]) {
    t.deepEqual(checkMessage(m), m);
    t.true(published(m), JSON.stringify(m));
  }
  const r = checkMessage({ v: 1, kind: 'result', jobId: 'j', result: env, outcome: 'ok' });
  t.is(r.kind, 'result');
});

test('checkMessage() refuses every wrong value at every key path of a command-submit with E_PROTOCOL', (t) => {
  assertMutationsRefusedCleanly(t, submit, checkMessage, 'E_PROTOCOL');
});
