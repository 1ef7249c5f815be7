// `npm run docs:layout` (scripts/disk-layout-doc.ts): writes the partition table of
// doc/disk-layout.md from the layout table (platform/disk-layout.ts), between its two marker
// lines; `--check` only compares, and test/platform/disk-layout.test.ts fails the same way
// when the doc differs.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DISK_LAYOUT, EMPTY_SLOT, type PartitionRow } from '../platform/index.ts';

export const DOC = join(import.meta.dirname, '..', 'doc', 'disk-layout.md');
export const BEGIN =
  '<!-- partition table: generated from platform/disk-layout.ts by scripts/disk-layout-doc.ts -->';
export const END = '<!-- end of the generated partition table -->';

function gptName(row: PartitionRow): string {
  if (typeof row.label === 'string') return `\`${row.label}\`${row.optional === true ? ' (optional)' : ''}`;
  return row.slot === 'b' ? `\`${EMPTY_SLOT}\`` : `\`NAME_VERSION${row.label.slotSuffix}\``;
}

function sizeText(row: PartitionRow): string {
  const s = row.size;
  const headroom = s.headroom === undefined ? '' : ` + ${Math.round((s.headroom - 1) * 100)} %`;
  const content = row.verity === 'hash' ? 'the hash area' : 'CoreOS';
  if (s.spec === undefined) return s.defaultMiB === 0 ? `${content}${headroom}` : `${s.defaultMiB}`;
  const key = `\`${s.spec}\``;
  if (s.defaultMiB === 0) return `${key} (0 = ${content}${headroom})`;
  return `${key} (${s.defaultMiB})${s.grow === true ? ', or what it holds' : ''}`;
}

/** The markdown table, its columns padded as the other tables in doc/ are. */
export function layoutTable(): string {
  const head = ['#', 'GPT name', 'type', 'contents', 'read-only', 'mounted at', 'size (MiB)'];
  const rows = DISK_LAYOUT.map((r, i) => [
    String(i + 1),
    gptName(r),
    `${r.typeName} \`${r.type.slice(0, 8)}-…\``,
    r.contents,
    r.readOnly ? 'yes' : '',
    r.mount === undefined ? '' : `\`${r.mount.target}\``,
    sizeText(r),
  ]);
  const width = head.map((h, c) => Math.max(h.length, 3, ...rows.map((r) => [...(r[c] ?? '')].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((x, c) => x + ' '.repeat((width[c] ?? 0) - [...x].length)).join(' | ')} |`;
  return [line(head), line(width.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** `text` with the part between the markers replaced by the generated table. */
export function withLayoutTable(text: string): string {
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  if (a < 0 || b < a) throw new Error(`${DOC} lacks the partition table markers`);
  return `${text.slice(0, a + BEGIN.length)}\n\n${layoutTable()}\n\n${text.slice(b)}`;
}

if (import.meta.main) {
  const have = await readFile(DOC, 'utf8');
  const want = withLayoutTable(have);
  if (have === want) process.exit(0);
  if (process.argv.includes('--check')) {
    console.error(
      `${DOC}: the partition table differs from platform/disk-layout.ts; run npm run docs:layout`,
    );
    process.exitCode = 1;
  } else {
    await writeFile(DOC, want);
    console.log(`wrote ${DOC}`);
  }
}
