// `npm run bench -- keys`: ML-DSA sign/verify ops/s on the node:crypto backend (ours, fast path)
// and @noble/post-quantum (the reference, portable path) in the same run, and their ratio.
import { generateSigningKey, rawPublicKey, sign, verify } from '../keys/algorithms.ts';
import type { SignatureAlgorithm } from '../keys/types.ts';

function rate(f: () => void, ms: number): number {
  const start = performance.now();
  let n = 0;
  while (performance.now() - start < ms) {
    f();
    n++;
  }
  return (n * 1000) / (performance.now() - start);
}

export async function run(argv: string[]): Promise<void> {
  const ms = argv.includes('--quick') ? 300 : 1500;
  const msg = new Uint8Array(256).fill(7);
  const ctx = 'milkyway/v1/result';
  const rows: string[] = [];
  for (const alg of ['ml-dsa-44', 'ml-dsa-65', 'ml-dsa-87'] as SignatureAlgorithm[]) {
    const key = generateSigningKey(alg);
    const pub = rawPublicKey(key.publicKey);
    const sig = sign(key, msg, ctx);
    sign(key, msg, ctx, 'noble');
    const r = {
      nodeSign: rate(() => sign(key, msg, ctx, 'node'), ms),
      nobleSign: rate(() => sign(key, msg, ctx, 'noble'), ms),
      nodeVerify: rate(() => verify(alg, key.publicKey, msg, sig, ctx, 'node'), ms),
      nobleVerify: rate(() => verify(alg, pub, msg, sig, ctx, 'noble'), ms),
    };
    rows.push(
      `| ${alg} | ${r.nodeSign.toFixed(0)} | ${r.nobleSign.toFixed(0)} | ${(r.nodeSign / r.nobleSign).toFixed(1)}× | ${r.nodeVerify.toFixed(0)} | ${r.nobleVerify.toFixed(0)} | ${(r.nodeVerify / r.nobleVerify).toFixed(1)}× |`,
    );
  }
  process.stdout.write(
    `| algorithm | node sign/s | noble sign/s | ratio | node verify/s | noble verify/s | ratio |\n|---|---|---|---|---|---|---|\n${rows.join('\n')}\n`,
  );
}
