// Mutation harness, disk: a small disk (GPT both copies, protective MBR, verity data and hash, verity-sig), the secure-config erofs and the verity superblock decoder.
// Every mutation of covered bytes must be refused with a code doc/errors-*.md lists; no case may
// crash, hang or leave a file behind (test/fuzz/_drive.ts).
import test from 'ava';
import { assertClean } from './_assert.ts';
import { fuzzGroup, tallyLine } from './_drive.ts';

test('disk: every mutation refused with a documented code, no crash, hang or leftover', async (t) => {
  const tallies = await fuzzGroup('disk');
  for (const x of tallies) t.log(tallyLine(x));
  assertClean(t, tallies, { signed: true });
});
