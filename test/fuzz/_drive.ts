// The parent side of the mutation harness: builds the fixture once per test file, runs each
// artifact's cases in a runner child (_runner.ts) under a per-case watchdog, restarts the
// runner after the case that hung or killed it, and tallies what every case did.
import { fork } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Group } from './_artifacts.ts';
import { type FuzzFixture, makeFuzzFixture } from './_fixture.ts';
import type { Depth } from './_mutate.ts';
import type { CaseReport, PlanReport } from './_runner.ts';

/** The seed of every case list: MWAY_FUZZ_SEED, else the issue that asked for the harness. */
export const SEED = Number(process.env.MWAY_FUZZ_SEED ?? 12);
/**
 * MWAY_FUZZ_DEPTH=full (npm run test:fuzz) runs every case; otherwise (npm test) a seeded
 * sample of each artifact's cases (test/fuzz/_mutate.ts, `Depth`).
 */
export const DEPTH: Depth = process.env.MWAY_FUZZ_DEPTH === 'full' ? 'full' : 'quick';
/** A case that takes longer than this is a hang (generous: the machine is shared and loaded). */
const CASE_TIMEOUT_MS = Number(process.env.MWAY_FUZZ_CASE_TIMEOUT_MS ?? 20_000);

export interface ArtifactTally {
  name: string;
  group: Group;
  /** What of it is covered by a signature or signed digest (PlanReport.coverage). */
  coverage: PlanReport['coverage'];
  cases: number;
  flips: number;
  truncations: number;
  /** Cases refused with a documented code. */
  refused: number;
  /** Accepted cases that changed covered bytes (must be 0). */
  acceptedCovered: number;
  /** Accepted cases that changed bytes nothing covers (allowed for unsigned decoders only). */
  acceptedUncovered: number;
  /** Accepted cases that decode to exactly the original (framing only, e.g. a PEM line ending). */
  equivalent: number;
  crashes: number;
  hangs: number;
  undocumented: number;
  leftovers: number;
  codes: Record<string, number>;
  /** The first few findings, for the assertion message. */
  findings: string[];
  ms: number;
}

let fixture: Promise<{ fx: FuzzFixture; root: string }> | undefined;

/** One fixture per test file (process), removed when the process exits. */
export function fuzzFixture(): Promise<{ fx: FuzzFixture; root: string }> {
  fixture ??= (async () => {
    const root = await mkdtemp(join(tmpdir(), 'mway-fuzz-'));
    // Synchronous: the process is exiting.
    process.once('exit', () => rmSync(root, { recursive: true, force: true }));
    const fx = await makeFuzzFixture(join(root, 'fixture'));
    return { fx, root };
  })();
  return fixture;
}

const RUNNER = join(import.meta.dirname, '_runner.ts');

/** Where a runner stopped: the artifact and case after the last case it reported. */
interface Position {
  artifact: number;
  case: number;
}

function runFrom(
  root: string,
  fx: FuzzFixture,
  group: Group,
  from: Position,
  caseTimeoutMs: number,
  onPlan: (p: PlanReport) => void,
  onCase: (c: CaseReport) => void,
): Promise<{ end: 'done' | 'hang' | 'died'; at: Position; detail: string }> {
  return new Promise((resolve) => {
    // The case in flight: the one after the last reported (a new plan resets it to case 0).
    const at: Position = { ...from };
    let settled = false;
    let stderr = '';
    const args = [fx.dir, group, String(from.artifact), String(SEED), String(from.case)];
    args.push(process.env.MWAY_FUZZ_FINDINGS ?? '', process.env.MWAY_FUZZ_ONLY ?? '', DEPTH);
    const child = fork(RUNNER, args, {
      execArgv: [],
      // A TMPDIR of its own per group: the groups of one file run at once, and each runner
      // checks after every case that its TMPDIR is empty.
      env: { ...process.env, TMPDIR: join(root, `tmp-${group}`) },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    let timer: NodeJS.Timeout;
    const finish = (end: 'done' | 'hang' | 'died', detail: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (end !== 'done') child.kill('SIGKILL');
      resolve({ end, at, detail });
    };
    const arm = (ms: number) => {
      clearTimeout(timer);
      timer = setTimeout(() => finish('hang', `ran longer than ${ms} ms`), ms);
    };
    // Start-up (imports, fixture load, the first artifact's own check) gets a minute.
    arm(60_000);
    child.on('message', (m: CaseReport | PlanReport | { type: 'done' }) => {
      if (m.type === 'done') return finish('done', '');
      if (m.type === 'plan') {
        at.artifact = m.artifact;
        at.case = m.artifact === from.artifact ? from.case : 0;
        onPlan(m);
        // Loading the next artifact and decoding its original may take a while.
        arm(60_000);
        return;
      }
      at.artifact = m.artifact;
      at.case = m.i + 1;
      onCase(m);
      arm(caseTimeoutMs);
    });
    child.on('exit', (code, signal) =>
      finish('died', `runner exited ${signal ?? code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`),
    );
  });
}

function emptyTally(name: string, group: Group, coverage: PlanReport['coverage']): ArtifactTally {
  return {
    name,
    group,
    coverage,
    cases: 0,
    flips: 0,
    truncations: 0,
    refused: 0,
    acceptedCovered: 0,
    acceptedUncovered: 0,
    equivalent: 0,
    crashes: 0,
    hangs: 0,
    undocumented: 0,
    leftovers: 0,
    codes: {},
    findings: [],
    ms: 0,
  };
}

function note(t: ArtifactTally, s: string): void {
  if (t.findings.length < 8) t.findings.push(s);
}

function count(t: ArtifactTally, c: CaseReport): void {
  if (c.kind === 'flip') t.flips++;
  if (c.kind === 'truncate') t.truncations++;
  if (c.outcome === 'refused') {
    t.refused++;
    t.codes[c.code as string] = (t.codes[c.code as string] ?? 0) + 1;
  } else if (c.outcome === 'equivalent') t.equivalent++;
  else if (c.outcome === 'accepted') {
    if (c.covered) {
      t.acceptedCovered++;
      note(t, `case ${c.i} (${c.kind}) accepted`);
    } else t.acceptedUncovered++;
  } else {
    if (c.outcome === 'crash') t.crashes++;
    if (c.outcome === 'undocumented') t.undocumented++;
    if (c.outcome === 'leftover') t.leftovers++;
    note(t, `case ${c.i} (${c.kind}) ${c.outcome}: ${c.code ?? ''} ${c.message ?? ''}`);
  }
}

/**
 * Runs every case of every artifact of `group` in one runner process, restarted after a case
 * that hung or killed it (that case is counted, the run goes on after it); one tally per artifact.
 */
export async function fuzzGroup(group: Group, o: { caseTimeoutMs?: number } = {}): Promise<ArtifactTally[]> {
  const { fx, root } = await fuzzFixture();
  await mkdir(join(root, `tmp-${group}`), { recursive: true });
  const tallies = new Map<number, ArtifactTally>();
  const started = new Map<number, number>();
  let from: Position = { artifact: 0, case: 0 };
  for (let restarts = 0; restarts <= 20; restarts++) {
    const r = await runFrom(
      root,
      fx,
      group,
      from,
      o.caseTimeoutMs ?? CASE_TIMEOUT_MS,
      (p) => {
        const t = tallies.get(p.artifact) ?? emptyTally(p.name, group, p.coverage);
        t.cases = p.cases;
        tallies.set(p.artifact, t);
        if (!started.has(p.artifact)) started.set(p.artifact, Date.now());
        for (const [k, x] of tallies)
          if (k < p.artifact && x.ms === 0) x.ms = Date.now() - (started.get(k) ?? Date.now());
      },
      (c) => count(tallies.get(c.artifact) as ArtifactTally, c),
    );
    if (r.end === 'done') break;
    const t = tallies.get(r.at.artifact) ?? emptyTally(`artifact ${r.at.artifact}`, group, 'unsigned');
    tallies.set(r.at.artifact, t);
    if (r.end === 'hang') t.hangs++;
    else t.crashes++;
    note(t, `case ${r.at.case} ${r.end}: ${r.detail}`);
    from =
      t.cases > 0 && r.at.case + 1 >= t.cases
        ? { artifact: r.at.artifact + 1, case: 0 }
        : { artifact: r.at.artifact, case: r.at.case + 1 };
  }
  for (const [k, x] of tallies) if (x.ms === 0) x.ms = Date.now() - (started.get(k) ?? Date.now());
  return [...tallies.entries()].sort((a, b) => a[0] - b[0]).map(([, t]) => t);
}

/** One line per artifact, for t.log and doc/threat-model.md. */
export function tallyLine(t: ArtifactTally): string {
  const codes = Object.entries(t.codes)
    .sort((a, b) => b[1] - a[1])
    .map(([c, n]) => `${c} ${n}`)
    .join(', ');
  return `${t.name}: ${t.cases} cases (${t.flips} flips, ${t.truncations} truncations), refused ${t.refused}, accepted ${t.acceptedCovered} covered / ${t.acceptedUncovered} uncovered, equivalent ${t.equivalent}, crashes ${t.crashes}, hangs ${t.hangs}, undocumented ${t.undocumented}, left behind ${t.leftovers} — ${(t.ms / 1000).toFixed(1)} s — ${codes}`;
}
