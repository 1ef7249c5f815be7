// Writes man/<binary>.1 for the five binaries from their citty command trees (common/cli-docs.ts).
// `npm run docs:man`; test/cli/man-pages.test.ts fails when a committed page differs.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { commandTree, manPage } from '../common/index.ts';
import { MAN_ROOTS, manRoots } from './man-roots.ts';

const out = join(import.meta.dirname, '..', 'man');
await mkdir(out, { recursive: true });
for (const [bin, root] of Object.entries(await manRoots())) {
  await writeFile(join(out, `${bin}.1`), manPage(await commandTree(root), '0.1.0'));
}
process.stdout.write(`man: wrote ${MAN_ROOTS.length} pages to ${out}\n`);
