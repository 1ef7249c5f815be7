// One artifact's mutation cases, run in a child process so a case that hangs (a blocking open,
// a promise that never settles, a loop) can be killed and the run resumed at the next case:
//   node _runner.ts FIXTURE_DIR GROUP ARTIFACT_INDEX SEED FIRST_CASE FINDINGS_DIR ONLY DEPTH
// Reports over IPC: one `plan`, then one `case` per case in order, then `done`. TMPDIR is the
// parent's private directory, checked empty after every case (nothing may be left behind).
import { mkdir, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMilkyWayError } from '../../common/index.ts';
import { type Artifact, type Group, loadArtifacts } from './_artifacts.ts';
import { documentedCodes } from './_codes.ts';
import type { FuzzFixture } from './_fixture.ts';
import { applyCase, type Depth, describe, type MutationCase, planCases } from './_mutate.ts';

export type Outcome = 'accepted' | 'equivalent' | 'refused' | 'crash' | 'undocumented' | 'leftover';

export interface CaseReport {
  type: 'case';
  artifact: number;
  i: number;
  kind: MutationCase['kind'];
  /** Whether this case changes bytes the artifact's signatures or digests cover. */
  covered: boolean;
  outcome: Outcome;
  code?: string;
  message?: string;
}

export interface PlanReport {
  type: 'plan';
  artifact: number;
  name: string;
  cases: number;
  /** Every byte signed (every flip must be refused), some (a signed file inside), or none (a decoder). */
  coverage: 'signed' | 'partly signed' | 'unsigned';
}

function send(m: CaseReport | PlanReport | { type: 'done' }): Promise<void> {
  return new Promise((resolve, reject) => {
    if (process.send === undefined) return reject(new Error('no IPC channel: run me from _drive.ts'));
    process.send(m, (e: Error | null) => (e ? reject(e) : resolve()));
  });
}

function covers(a: Artifact, c: MutationCase, length: number): boolean {
  if (typeof a.signed === 'boolean') return a.signed;
  if (c.kind === 'flip') return a.signed(c.at);
  if (c.kind === 'truncate') {
    for (let i = c.length; i < length; i++) if (a.signed(i)) return true;
    return false;
  }
  return false;
}

function classify(e: unknown, codes: Set<string>): { outcome: Outcome; code?: string; message: string } {
  const err = e as { code?: unknown; message?: unknown; stack?: unknown; documentedBy?: unknown };
  const message = String(err?.message ?? e).slice(0, 300);
  const code = typeof err?.code === 'string' ? err.code : undefined;
  const ours = isMilkyWayError(e) || err?.documentedBy === 'caller';
  if (!ours || code === undefined || code === 'E_INTERNAL') {
    const where = String(err?.stack ?? '')
      .split('\n')
      .slice(0, 4)
      .join(' | ');
    return { outcome: 'crash', ...(code === undefined ? {} : { code }), message: `${message} :: ${where}` };
  }
  if (!codes.has(code)) return { outcome: 'undocumented', code, message };
  return { outcome: 'refused', code, message };
}

/** Applies a case to the working file in place and returns how to undo it. */
async function applyInPlace(
  path: string,
  original: Uint8Array,
  c: MutationCase,
): Promise<() => Promise<void>> {
  const fh = await open(path, 'r+');
  try {
    if (c.kind === 'flip') {
      await fh.write(Uint8Array.of((original[c.at] as number) ^ c.mask), 0, 1, c.at);
      return async () => {
        const h = await open(path, 'r+');
        await h.write(original, c.at, 1, c.at);
        await h.close();
      };
    }
    if (c.kind === 'truncate') {
      await fh.truncate(c.length);
      return async () => {
        const h = await open(path, 'r+');
        await h.write(original, c.length, original.length - c.length, c.length);
        await h.close();
      };
    }
    await fh.write(Uint8Array.of(c.byte), 0, 1, original.length);
    return async () => {
      const h = await open(path, 'r+');
      await h.truncate(original.length);
      await h.close();
    };
  } finally {
    await fh.close();
  }
}

async function runArtifact(
  a: Artifact,
  index: number,
  first: number,
  o: { fx: FuzzFixture; seed: number; depth: Depth; codes: Set<string>; findings: string | undefined },
): Promise<void> {
  const cases = planCases(a.name, a.bytes.length, a.plan, o.seed, o.depth);
  const coverage = typeof a.signed === 'function' ? 'partly signed' : a.signed ? 'signed' : 'unsigned';
  await send({ type: 'plan', artifact: index, name: a.name, cases: cases.length, coverage });
  const slug = a.name.replace(/[^a-z0-9]+/gi, '-').toLowerCase();
  const scratch = join(o.fx.dir, `scratch-${process.pid}`);
  const work = join(o.fx.dir, `work-${process.pid}`);
  await mkdir(scratch, { recursive: true });
  await mkdir(work, { recursive: true });
  const file = join(work, slug);
  if (a.mode === 'file') await writeFile(file, a.bytes);
  const tmp = tmpdir();
  // The unmutated artifact must pass (else every refusal below would be meaningless).
  const original = await a.decode(a.mode === 'file' ? file : a.bytes, scratch);
  const meaning = a.meaning?.(original);
  let found = 0;
  for (let i = first; i < cases.length; i++) {
    const c = cases[i] as MutationCase;
    let undo: (() => Promise<void>) | undefined;
    let r: { outcome: Outcome; code?: string; message?: string };
    try {
      let got: unknown;
      if (a.mode === 'file') {
        undo = await applyInPlace(file, a.bytes, c);
        got = await a.decode(file, scratch);
      } else got = await a.decode(applyCase(a.bytes, c), scratch);
      r = { outcome: meaning !== undefined && a.meaning?.(got) === meaning ? 'equivalent' : 'accepted' };
    } catch (e) {
      r = classify(e, o.codes);
    }
    if (undo !== undefined) await undo();
    const left = await readdir(tmp);
    if (left.length > 0) {
      r = { outcome: 'leftover', message: `left in TMPDIR: ${left.slice(0, 5).join(', ')}` };
      for (const n of left) await rm(join(tmp, n), { recursive: true, force: true });
    }
    for (const n of await readdir(scratch)) await rm(join(scratch, n), { recursive: true, force: true });
    const covered = covers(a, c, a.bytes.length);
    const bad =
      r.outcome === 'crash' ||
      r.outcome === 'undocumented' ||
      r.outcome === 'leftover' ||
      (r.outcome === 'accepted' && covered);
    // Findings (for the regression corpus): at most 50 per artifact, bytes only below 1 MiB.
    if (bad && o.findings !== undefined && o.findings !== '' && found++ < 50) {
      await mkdir(o.findings, { recursive: true });
      const name = `${slug}-${i}`;
      if (a.bytes.length <= 1 << 20) await writeFile(join(o.findings, `${name}.bin`), applyCase(a.bytes, c));
      await writeFile(
        join(o.findings, `${name}.json`),
        JSON.stringify({ artifact: a.name, case: describe(c), ...r }, null, 2),
      );
    }
    await send({ type: 'case', artifact: index, i, kind: c.kind, covered, ...r });
  }
  await rm(scratch, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
}

/** Runs the group's artifacts from FIRST_ARTIFACT (its cases from FIRST_CASE) to the end. */
async function main(): Promise<void> {
  const [fixtureDir, group, firstArtifact, seed, firstCase, findings, only, depth] = process.argv.slice(2);
  const fx = JSON.parse(await readFile(join(fixtureDir as string, 'fixture.json'), 'utf8')) as FuzzFixture;
  const artifacts = await loadArtifacts(fx, group as Group);
  const o = {
    fx,
    seed: Number(seed),
    depth: (depth === 'full' ? 'full' : 'quick') as Depth,
    codes: documentedCodes(),
    findings,
  };
  for (let k = Number(firstArtifact); k < artifacts.length; k++) {
    const a = artifacts[k] as Artifact;
    // MWAY_FUZZ_ONLY=text runs only the artifacts whose name contains it (debugging a finding).
    if (only !== undefined && only !== '' && !a.name.includes(only)) continue;
    await runArtifact(a, k, k === Number(firstArtifact) ? Number(firstCase) : 0, o);
  }
  await send({ type: 'done' });
}

await main();
process.disconnect?.();
