// Mutation harness, envelopes: an envelope of each type through its own verifier (command check, membership, result, status, sealed secret, secure config file, coreos, bundle, stage1, layer, file).
// Every mutation of covered bytes must be refused with a code doc/errors-*.md lists; no case may
// crash, hang or leave a file behind (test/fuzz/_drive.ts).
import test from 'ava';
import { assertClean } from './_assert.ts';
import { fuzzGroup, tallyLine } from './_drive.ts';

test('envelopes: every mutation refused with a documented code, no crash, hang or leftover', async (t) => {
  const tallies = await fuzzGroup('envelopes');
  for (const x of tallies) t.log(tallyLine(x));
  assertClean(t, tallies, { signed: true });
});
