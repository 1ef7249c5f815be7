// Mutation harness, decoders: decoders of unsigned input: newc cpio, protocol message bodies, enrollment requests, the agent config and the image spec.
// Every mutation of covered bytes must be refused with a code doc/errors-*.md lists; no case may
// crash, hang or leave a file behind (test/fuzz/_drive.ts).
import test from 'ava';
import { assertClean } from './_assert.ts';
import { fuzzGroup, tallyLine } from './_drive.ts';

test('decoders: every mutation refused with a documented code, no crash, hang or leftover', async (t) => {
  const tallies = await fuzzGroup('decoders');
  for (const x of tallies) t.log(tallyLine(x));
  assertClean(t, tallies, { signed: false });
});
