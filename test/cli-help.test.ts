import test from 'ava';
import { BINS, cli } from './helpers.ts';

for (const bin of Object.keys(BINS) as (keyof typeof BINS)[]) {
  test(`${bin} --help prints usage naming the binary and exits 0`, async (t) => {
    const r = await cli(bin, ['--help']);
    t.is(r.exitCode, 0, r.stderr);
    t.regex(r.stdout, new RegExp(`USAGE.*${bin}`));
  });
}
