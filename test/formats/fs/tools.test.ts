// A missing filesystem tool must fail with E_TOOL_MISSING naming its Debian package,
// before anything is written. PATH is process-wide, so these run serially in their
// own file.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { makeErofs, makeSquashfs, makeVfat } from '../../../formats/index.ts';
import { tempDir } from '../../helpers.ts';

const cases = [
  { name: 'erofs', pkg: 'erofs-utils', make: makeErofs },
  { name: 'squashfs', pkg: 'squashfs-tools', make: makeSquashfs },
  // mkfs.vfat lives in /usr/sbin (always searched); mcopy is only found through PATH.
  { name: 'vfat', pkg: 'mtools', make: makeVfat },
] as const;

for (const c of cases) {
  test.serial(`${c.name}: a missing tool names the Debian package ${c.pkg} and writes nothing`, async (t) => {
    const dir = await tempDir(t);
    const src = join(dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'hello'), 'hello\n');
    const out = join(dir, `out.${c.name}`);
    const saved = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      const e = await t.throwsAsync(c.make(src, out, { sourceDateEpoch: 0 }));
      t.is((e as { code?: string }).code, 'E_TOOL_MISSING');
      t.regex(e?.message ?? '', new RegExp(`apt-get install ${c.pkg}`));
    } finally {
      process.env.PATH = saved;
    }
    t.false(existsSync(out), 'no partial image left behind');
  });
}
