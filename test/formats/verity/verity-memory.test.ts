// Streaming: formatVerity's memory must not grow with the data size. Each size runs in
// a fresh process (so earlier allocations do not hide growth) over a sparse file, and
// the peak RSS of a 16x larger input must stay within a small constant of the smaller.
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { ROOT, tempDir } from '../../helpers.ts';

async function peakRssMiB(dataPath: string, bytes: number, hashPath: string): Promise<number> {
  const fh = await open(dataPath, 'w');
  await fh.truncate(bytes);
  await fh.close();
  const script = `
    const { formatVerity } = await import(${JSON.stringify(join(ROOT, 'formats/verity/verity-format.ts'))});
    await formatVerity(${JSON.stringify(dataPath)}, { hashPath: ${JSON.stringify(hashPath)}, seed: 'rss', label: 'x' });
    console.log(process.resourceUsage().maxRSS);`;
  const scriptPath = `${dataPath}.mjs`;
  await writeFile(scriptPath, script);
  const r = await execa(process.execPath, [scriptPath], { timeout: 240_000 });
  return Number(r.stdout.trim()) / 1024;
}

test('formatVerity memory stays flat from 64 MiB to 1 GiB of data', async (t) => {
  const dir = await tempDir(t);
  const small = await peakRssMiB(join(dir, 'small'), 64 << 20, join(dir, 'small.hash'));
  const large = await peakRssMiB(join(dir, 'large'), 1 << 30, join(dir, 'large.hash'));
  t.log(`peak RSS: 64 MiB data → ${small.toFixed(0)} MiB, 1 GiB data → ${large.toFixed(0)} MiB`);
  // The hash tree for 1 GiB is 8 MiB; an implementation that buffered data or the
  // whole tree would grow by at least that much, one that buffered the data by 960 MiB.
  t.true(large - small < 48, `RSS grew by ${(large - small).toFixed(0)} MiB`);
});
