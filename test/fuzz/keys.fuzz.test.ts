// Mutation harness, keys/: certificates (leaf, anchor, PEM bundle), CRLs (DER, PEM file) and
// detached signatures. Every flip, truncation and appended byte must be refused with a code
// doc/errors-*.md lists; no case may crash, hang or leave a file behind (test/fuzz/_drive.ts).
import test from 'ava';
import { fuzzGroup, tallyLine } from './_drive.ts';
import { assertClean } from './_assert.ts';

test('keys artifacts: every mutation refused with a documented code, no crash, hang or leftover', async (t) => {
  const tallies = await fuzzGroup('keys');
  for (const x of tallies) t.log(tallyLine(x));
  assertClean(t, tallies, { signed: true });
});
