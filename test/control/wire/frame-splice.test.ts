// encodeFrameWith (the broker's job-event with a result's canonical text spliced in) decodes to
// the very message encodeFrame would have written, and is refused past MAX_FRAME the same way.
import test from 'ava';
import { canonicalText } from '../../../keys/index.ts';
import {
  decodeBody,
  encodeFrame,
  encodeFrameWith,
  HEADER_SIZE,
  MAX_FRAME,
  message,
} from '../../../control/wire/index.ts';

const envelope = {
  v: 1,
  type: 'result',
  payload: { z: 'é\u2028"\\', a: [1, 0, 1.5e-7, null, true], peer: 'p1' },
  signatures: [
    {
      alg: 'ml-dsa-65',
      sig: 'QUJD'.repeat(1000),
      chain: ['REVG'],
      created: '2026-12-04T00:00:00Z',
      signer: 'ab',
    },
  ],
};

test('encodeFrameWith() gives the message encodeFrame() gives, with the spliced field', (t) => {
  const fields = { jobId: 'a'.repeat(32), peerId: 'p1', outcome: 'ok' };
  const spliced = encodeFrameWith(message('job-event', fields), 'result', canonicalText(envelope));
  const plain = encodeFrame(message('job-event', { ...fields, result: envelope }));
  t.is(spliced.readUInt32BE(0), spliced.length - HEADER_SIZE);
  const a = decodeBody(spliced.subarray(HEADER_SIZE));
  const b = decodeBody(plain.subarray(HEADER_SIZE));
  t.deepEqual(a, b);
  t.deepEqual(a.result, envelope);
});

test('encodeFrameWith() refuses a body over MAX_FRAME with E_FRAME_TOO_LARGE', (t) => {
  const big = JSON.stringify('x'.repeat(MAX_FRAME));
  const e = t.throws(() => encodeFrameWith(message('job-event', { jobId: 'j' }), 'result', big));
  t.is((e as { code?: string }).code, 'E_FRAME_TOO_LARGE');
});
