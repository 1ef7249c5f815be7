// The harness's pass condition, shared by its test files.
import { writeFileSync } from 'node:fs';
import type { ExecutionContext } from 'ava';
import { type ArtifactTally, DEPTH, SEED } from './_drive.ts';

export function assertClean(
  t: ExecutionContext,
  tallies: readonly ArtifactTally[],
  o: { signed: boolean },
): void {
  t.true(tallies.length > 0);
  t.log(`depth ${DEPTH} (MWAY_FUZZ_DEPTH), seed ${SEED} (MWAY_FUZZ_SEED)`);
  for (const x of tallies) {
    const why = `${x.name}: ${x.findings.join('; ')}`;
    t.true(x.cases > 0, `${x.name}: no cases ran`);
    t.is(x.crashes, 0, why);
    t.is(x.hangs, 0, why);
    t.is(x.undocumented, 0, why);
    t.is(x.leftovers, 0, why);
    t.is(x.acceptedCovered, 0, why);
    if (o.signed) t.true(x.refused > 0, `${x.name}: nothing was refused`);
  }
  // MWAY_FUZZ_REPORT=file appends the tallies as JSON lines (doc/threat-model.md is made from them).
  const report = process.env.MWAY_FUZZ_REPORT;
  if (report !== undefined && report !== '')
    writeFileSync(
      report,
      tallies
        .map((x) => `${JSON.stringify({ ...x, findings: undefined, depth: DEPTH, seed: SEED })}\n`)
        .join(''),
      { flag: 'a' },
    );
}
