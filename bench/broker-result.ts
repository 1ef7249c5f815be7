// `npm run bench -- broker-result [--n=N]`: the broker's serialization work for one peer result
// (control/broker/broker-jobs.ts flushResults), ours against what it did before, in one run:
//   ours:      the envelope's canonical text once (keys/canonical.ts fast path), the audit entry's
//              hash and row spliced from it (entryHashOf), the watchers' job-event frame spliced
//              from it (encodeFrameWith);
//   reference: `canonicalize` (npm, RFC 8785) over the whole audit entry for its hash, then
//              JSON.stringify of the row's data and of the job-event, as before;
// and one ML-DSA-65 verify (node:crypto) as the unit the fleet bench states the broker's cost in.
// The envelopes are real signed results of the fleet bench's size (a status output, the peer's
// chain). CPU time, rounds interleaved, median of the rounds.
import canonicalize from 'canonicalize';
import { createHash } from 'node:crypto';
import { signResult } from '../control/wire/result.ts';
import { encodeFrame, encodeFrameWith, entryHashOf, GENESIS, message } from '../control/wire/index.ts';
import { generateKemKey, generateSigningKey, sign, verify } from '../keys/algorithms.ts';
import { type Certificate, canonicalText, issueCertificate, rawPublicKey } from '../keys/index.ts';
import { intFlag } from './_flags.ts';
import { cpuUsOf, percentile } from './_measure.ts';

async function envelopes(n: number): Promise<unknown[]> {
  const rootKey = generateSigningKey('ml-dsa-65');
  const root = await issueCertificate({ role: 'user-root', name: 'root', subjectKey: rootKey });
  const out: unknown[] = [];
  // A few peers, each signing many results: the bytes differ (ids, times, signatures) as in a round.
  const peers: Array<{ key: ReturnType<typeof generateSigningKey>; chain: Certificate[] }> = [];
  for (let i = 0; i < 8; i++) {
    const key = generateSigningKey('ml-dsa-65');
    const cert = await issueCertificate({
      role: 'peer',
      name: `peer-${i}`,
      peerId: `peer-${i}`,
      subjectKey: key,
      kemPublicKey: rawPublicKey(generateKemKey().publicKey),
      issuerKey: rootKey,
      issuerCert: root,
    });
    peers.push({ key, chain: [cert] });
  }
  for (let i = 0; i < n; i++) {
    const p = peers[i % peers.length] as (typeof peers)[number];
    const now = new Date(Date.now() + i).toISOString();
    const env = signResult(
      {
        v: 1,
        command: createHash('sha256').update(String(i)).digest('hex').slice(0, 32),
        commandDigest: createHash('sha256').update(`d${i}`).digest('hex'),
        peer: `peer-${i % peers.length}`,
        status: 'ok',
        startedAt: now,
        finishedAt: now,
        output: {
          hostname: `peer-${i}`,
          uptime: 12345.67,
          services: Array.from({ length: 12 }, (_, k) => ({
            name: `svc-${k}`,
            state: 'running',
            restarts: k,
          })),
          layers: [{ name: 'web', version: '1.2.3', active: true }],
        },
      } as never,
      p.key,
      p.chain,
    );
    // As the broker holds it: parsed from the peer's frame.
    out.push(JSON.parse(JSON.stringify(env)));
  }
  return out;
}

function ours(results: unknown[], seq0: number): void {
  let prev = GENESIS;
  results.forEach((result, i) => {
    const envelope = canonicalText(result);
    const rest = canonicalText({ jobId: 'j'.repeat(32), outcome: 'ok', peerId: `peer-${i}` });
    const dataText = `{"envelope":${envelope},${rest.slice(1)}`;
    const e = {
      seq: seq0 + i,
      time: '2026-12-04T00:00:00.000Z',
      kind: 'result',
      actor: `peer:peer-${i}`,
      prev,
    };
    prev = entryHashOf(e, dataText);
    encodeFrameWith(
      message('job-event', { jobId: 'j'.repeat(32), peerId: `peer-${i}`, outcome: 'ok' }),
      'result',
      envelope,
    );
  });
}

function before(results: unknown[], seq0: number): void {
  let prev = GENESIS;
  results.forEach((result, i) => {
    const data = { jobId: 'j'.repeat(32), peerId: `peer-${i}`, outcome: 'ok', envelope: result };
    const e = {
      seq: seq0 + i,
      time: '2026-12-04T00:00:00.000Z',
      kind: 'result',
      actor: `peer:peer-${i}`,
      data,
      prev,
    };
    prev = createHash('sha256')
      .update(new TextEncoder().encode(canonicalize(e) as string))
      .digest('hex');
    JSON.stringify(data);
    encodeFrame(message('job-event', { jobId: 'j'.repeat(32), peerId: `peer-${i}`, outcome: 'ok', result }));
  });
}

export async function run(argv: string[]): Promise<void> {
  const n = intFlag(argv, 'n', 2000);
  const results = await envelopes(n);
  const bytes = JSON.stringify(results[0]).length;
  // Same bytes, same hash: the spliced entry is the canonical entry.
  const check = results.slice(0, 50);
  const data = (r: unknown, i: number) => ({
    jobId: 'j'.repeat(32),
    peerId: `peer-${i}`,
    outcome: 'ok',
    envelope: r,
  });
  check.forEach((r, i) => {
    const a = canonicalize(data(r, i));
    if (a !== canonicalText(data(r, i))) throw new Error('canonicalText differs from canonicalize');
  });
  const key = generateSigningKey('ml-dsa-65');
  const msg = new Uint8Array(bytes);
  const sig = sign(key, msg, 'milkyway/v1/result');
  const oursUs: number[] = [];
  const refUs: number[] = [];
  const verifyUs: number[] = [];
  for (let round = 0; round < 7; round++) {
    refUs.push(cpuUsOf(() => before(results, round * n)) / n);
    oursUs.push(cpuUsOf(() => ours(results, round * n)) / n);
    verifyUs.push(
      cpuUsOf(() => {
        for (let i = 0; i < 200; i++) verify('ml-dsa-65', key.publicKey, msg, sig, 'milkyway/v1/result');
      }) / 200,
    );
  }
  // The first round warms both paths up; the median of the others is the figure.
  const med = (xs: number[]) =>
    percentile(
      xs.slice(1).sort((a, b) => a - b),
      50,
    );
  const [o, r, v] = [med(oursUs), med(refUs), med(verifyUs)];
  process.stdout.write(
    [
      '| figure | value |',
      '|---|---|',
      `| results / size of one | ${n} / ${bytes} B |`,
      `| ours: canonical text once, audit hash and row and job-event spliced, per result | ${o.toFixed(1)} µs |`,
      `| reference: canonicalize the whole entry, JSON.stringify the row and the event (before) | ${r.toFixed(1)} µs |`,
      `| reference: one ML-DSA-65 verify (node:crypto) | ${v.toFixed(1)} µs |`,
      `| saved per result | ${(r - o).toFixed(1)} µs (${((r - o) / v).toFixed(2)} verifies); ours / before ${(o / r).toFixed(2)}× |`,
      '',
    ].join('\n'),
  );
}
