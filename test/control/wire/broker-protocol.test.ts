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
