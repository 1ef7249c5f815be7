// The fresh process of bench/operator-verify.ts: reads the results and the root, then times (CPU)
// the first-round work of a `mway` that has not seen these peers, in the order verifyResult does
// it, and a second full round; prints one JSON line.
import { readFileSync } from 'node:fs';
import { verifyResult } from '../control/wire/result.ts';
import { type Envelope, parseCertificates, readCertificates, verifyChain } from '../keys/index.ts';
import { cpuUsOf } from './_measure.ts';

const [file, rootPath] = process.argv.slice(2) as [string, string];
const { results, expect } = JSON.parse(readFileSync(file, 'utf8')) as {
  results: Envelope[];
  expect: { command: string; commandDigest: string };
};
const anchors = await readCertificates(rootPath);
const n = results.length;
const chains = results.map((r) => (r.signatures[0]?.chain ?? []).map((c) => Buffer.from(c, 'base64')));
const parsed: ReturnType<typeof parseCertificates>[] = [];
const parseUs =
  cpuUsOf(() => {
    for (const c of chains) parsed.push(c.flatMap((d) => parseCertificates(d)));
  }) / n;
const chainUs =
  cpuUsOf(() => {
    for (const p of parsed) verifyChain(p, { anchors, roles: ['peer'] });
  }) / n;
const firstRestUs =
  cpuUsOf(() => {
    for (const r of results) verifyResult(r, { anchors, crls: [], expect });
  }) / n;
const laterUs =
  cpuUsOf(() => {
    for (const r of results) verifyResult(r, { anchors, crls: [], expect });
  }) / n;
process.stdout.write(`${JSON.stringify({ parseUs, chainUs, firstRestUs, laterUs })}\n`);
