// The mutation harness (issue 12), one test per group of artifacts, sharing one fixture:
//   keys       certificates (leaf, anchor, PEM bundle), CRLs (DER, PEM file), detached signatures
//   envelopes  an envelope of each type through its own verifier (command check, membership,
//              result, status, sealed secret, secure config file, coreos, bundle, stage1, layer, file)
//   layers     the layer (.mwl) through verifyLayer, OCI import, the ustar header decoder
//   disk       a small disk (both GPT copies, protective MBR, verity data and hash, verity-sig),
//              the secure-config erofs, the verity superblock decoder
//   decoders   decoders of unsigned input: newc cpio, protocol bodies, enrollment requests, the
//              agent config, the image spec
// Every flip, truncation and appended byte of covered bytes must be refused with a code
// doc/errors-*.md lists; no case may crash, hang or leave a file behind (test/fuzz/_drive.ts).
// npm test runs a seeded sample of each artifact's cases; `npm run test:fuzz` runs them all.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { DOC, reportedArtifacts } from '../../scripts/fuzz-report.ts';
import type { Group } from './_artifacts.ts';
import { assertClean } from './_assert.ts';
import { fuzzGroup, tallyLine } from './_drive.ts';

const GROUPS: [Group, boolean][] = [
  ['keys', true],
  ['envelopes', true],
  ['layers', true],
  ['disk', true],
  ['decoders', false],
];

for (const [group, signed] of GROUPS) {
  test(`${group}: every mutation refused with a documented code, no crash, hang or leftover`, async (t) => {
    const tallies = await fuzzGroup(group);
    for (const x of tallies) t.log(tallyLine(x));
    assertClean(t, tallies, { signed });
    // doc/threat-model.md's counts are of these artifacts: a new one means `npm run fuzz:report`.
    const reported = reportedArtifacts(readFileSync(DOC, 'utf8'));
    for (const x of tallies)
      t.true(reported.includes(x.name), `${x.name} is not in doc/threat-model.md: run npm run fuzz:report`);
  });
}

// The harness can fail: decoders that hang, crash, accept a covered byte, throw an undocumented
// code, leave a file behind or kill their process are each caught and counted, and the run goes
// on after the case that hung or died (test/fuzz/_drive.ts restarts the runner past it).
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
