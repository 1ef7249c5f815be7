// `npm run bench -- operator-verify [--peers=N]`: where an operator's first round of results goes.
// N peers (distinct certificates under one root) each sign one result; a fresh process (what a
// `mway` run is) verifies them as verifyResult does, timed in parts: each peer certificate's first
// parse, its chain (the certificate's signature by the root), then the rest of verifyResult (the
// result's own signature and its binding) with both cached; then a second round, as later rounds
// are. Reference: one ML-DSA-65 verify (node:crypto) in this process. CPU time per result.
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { signResult } from '../control/wire/result.ts';
import { generateKemKey, generateSigningKey, sign, verify } from '../keys/algorithms.ts';
import { issueCertificate, rawPublicKey } from '../keys/index.ts';
import { intFlag } from './_flags.ts';
import { cpuUsOf } from './_measure.ts';

const here = dirname(fileURLToPath(import.meta.url));

export async function run(argv: string[]): Promise<void> {
  const n = intFlag(argv, 'peers', 300);
  const dir = await mkdtemp(join(tmpdir(), 'mway-bench-opverify-'));
  try {
    const rootKey = generateSigningKey('ml-dsa-65');
    const root = await issueCertificate({ role: 'user-root', name: 'root', subjectKey: rootKey });
    const command = createHash('sha256').update('c').digest('hex').slice(0, 32);
    const commandDigest = createHash('sha256').update('d').digest('hex');
    const results = [];
    for (let i = 0; i < n; i++) {
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
      const now = new Date().toISOString();
      results.push(
        signResult(
          {
            v: 1,
            command,
            commandDigest,
            peer: `peer-${i}`,
            status: 'ok',
            startedAt: now,
            finishedAt: now,
            output: { ok: true },
          } as never,
          key,
          [cert],
        ),
      );
    }
    await writeFile(
      join(dir, 'results.json'),
      JSON.stringify({ results, expect: { command, commandDigest } }),
    );
    await writeFile(join(dir, 'root.crt'), root.pem);
    const r = await execa(
      process.execPath,
      [join(here, '_operator-verify-child.ts'), join(dir, 'results.json'), join(dir, 'root.crt')],
      {
        timeout: 300_000,
      },
    );
    const f = JSON.parse(String(r.stdout).trim().split('\n').at(-1) as string) as Record<string, number>;
    const key = generateSigningKey('ml-dsa-65');
    const msg = new Uint8Array(14_000);
    const sig = sign(key, msg, 'milkyway/v1/result');
    for (let i = 0; i < 50; i++) verify('ml-dsa-65', key.publicKey, msg, sig, 'milkyway/v1/result');
    const v =
      cpuUsOf(() => {
        for (let i = 0; i < 300; i++) verify('ml-dsa-65', key.publicKey, msg, sig, 'milkyway/v1/result');
      }) / 300;
    const first = (f.parseUs ?? 0) + (f.chainUs ?? 0) + (f.firstRestUs ?? 0);
    const row = (what: string, us: number) =>
      `| ${what} | ${us.toFixed(0)} µs (${(us / v).toFixed(2)} verifies) |`;
    process.stdout.write(
      [
        '| figure (CPU per result, fresh process) | value |',
        '|---|---|',
        `| peers (distinct certificates) | ${n} |`,
        row("first round: each peer certificate's first parse", f.parseUs ?? 0),
        row('first round: its chain (signature by the root)', f.chainUs ?? 0),
        row("first round: the rest of verifyResult (the result's signature, binding)", f.firstRestUs ?? 0),
        row('first round in all', first),
        row('second round (certificate parsed and chain checked, cached)', f.laterUs ?? 0),
        row('reference: one ML-DSA-65 verify (node:crypto, this process)', v),
        '',
      ].join('\n'),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
