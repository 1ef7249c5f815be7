// The harness can fail: decoders that hang, crash, accept a covered byte, throw an undocumented
// code, leave a file behind or kill their process are each caught and counted, and the run goes
// on after the case that hung or died (test/fuzz/_drive.ts restarts the runner past it).
import test from 'ava';
import { fuzzGroup } from './_drive.ts';

test('the harness catches a hang, a crash, an accepted flip, an undocumented code, a leftover and a dying runner', async (t) => {
  const tallies = await fuzzGroup('selftest', { caseTimeoutMs: 3000 });
  for (const x of tallies) t.log(x.name, x.cases, x.refused, x.findings.join('; '));
  const by = Object.fromEntries(tallies.map((x) => [x.name, x]));
  t.is(by['selftest: hangs on byte 3']?.hangs, 1);
  t.is(by['selftest: crashes on byte 4']?.crashes, 1);
  t.is(by['selftest: accepts byte 5']?.acceptedCovered, 1);
  t.is(by['selftest: undocumented code on byte 6']?.undocumented, 1);
  t.is(by['selftest: leaves a file on byte 7']?.leftovers, 1);
  t.is(by['selftest: exits on byte 8']?.crashes, 1);
  // Every other case of each was still run and refused: the run resumed after the bad case.
  for (const x of tallies) t.is(x.refused, x.cases - 1, `${x.name}: ${x.findings.join('; ')}`);
});
