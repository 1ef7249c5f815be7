// matchLayout(): a GPT against the layout table. A disk as the builder lays it out matches;
// each way of differing (missing, extra, type, attributes, label, file system) is its own
// code naming the partition. build-disk.test.ts does the same on a real disk edited by sgdisk.
import test from 'ava';
import { DPS } from '../../formats/index.ts';
import { type LayoutEntry, matchLayout } from '../../imagebuild/disk-layout-check.ts';
import {
  DISK_LAYOUT,
  EMPTY_SLOT,
  type PartitionRow,
  partitionLabel,
  rowAttributeBits,
} from '../../platform/index.ts';

const sniffed = (r: PartitionRow): string | null =>
  r.slot === 'b' ? null : r.verity === 'hash' ? 'verity' : r.verity === 'sig' ? 'verity-sig' : r.filesystem;

/** The GPT the builder writes for `milkyway 1.0.0`, with the peer identity. */
function goodDisk(): LayoutEntry[] {
  return DISK_LAYOUT.map((r, i) => ({
    index: i + 1,
    name: partitionLabel(r, r.slot === 'b' ? EMPTY_SLOT : 'milkyway_1.0.0'),
    type: r.type,
    attributes: rowAttributeBits(r),
    filesystem: sniffed(r),
  }));
}

/** The 1-based GPT index of a role on that disk (rows are added over time; tests name roles). */
const ix = (role: string): number => DISK_LAYOUT.findIndex((r) => r.role === role) + 1;
const N = DISK_LAYOUT.length;

function edit(i: number, change: Partial<LayoutEntry>): LayoutEntry[] {
  const d = goodDisk();
  d[i - 1] = { ...(d[i - 1] as LayoutEntry), ...change };
  return d;
}

test('matchLayout() gives every partition of a built disk its role, with no problem', (t) => {
  const m = matchLayout(goodDisk());
  t.deepEqual(m.problems, []);
  t.deepEqual(
    m.roles,
    DISK_LAYOUT.map((r) => r.role),
  );
  // The optional peer identity may be absent.
  t.deepEqual(matchLayout(goodDisk().slice(0, -1)).problems, []);
});

test('matchLayout() finds fixed partitions by name anywhere, CoreOS slots by type in disk order', (t) => {
  const d = goodDisk();
  const moved = [...d.slice(1), d[0] as LayoutEntry];
  const m = matchLayout(moved);
  t.deepEqual(m.problems, []);
  t.is(m.roles.at(-1), 'esp');
  // The first root partition is slot A: an empty one there is refused, naming it.
  const [a, b] = [ix('coreos-a') - 1, ix('coreos-b') - 1];
  const swapped = d.map((e, i) => (i === a ? d[b] : i === b ? d[a] : e)) as LayoutEntry[];
  const s = matchLayout(swapped);
  t.is(s.roles[a], 'coreos-a');
  t.true(s.problems.some((p) => p.code === 'E_LAYOUT_LABEL' && p.partition?.index === b + 1));
});

test('E_LAYOUT_MISSING names the role a disk lacks', (t) => {
  const d = goodDisk().filter((e) => e.name !== 'dynamic-config');
  const m = matchLayout(d);
  t.deepEqual(
    m.problems.map((p) => [p.code, p.role]),
    [['E_LAYOUT_MISSING', 'dynamic-config']],
  );
  t.regex(
    m.problems[0]?.message ?? '',
    /no dynamic-config partition \(GPT name dynamic-config, type f71b577a-/,
  );
});

test('E_LAYOUT_EXTRA names a partition the layout does not have, and a second one of a name', (t) => {
  const d = [...goodDisk(), { index: N + 1, name: 'swap', type: DPS.linuxData, attributes: 0n }];
  const m = matchLayout(d);
  t.deepEqual(
    m.problems.map((p) => [p.code, p.partition]),
    [['E_LAYOUT_EXTRA', { index: N + 1, name: 'swap' }]],
  );
  t.is(m.roles[N], null);
  const twice = matchLayout([
    ...goodDisk(),
    { ...(goodDisk()[ix('data') - 1] as LayoutEntry), index: N + 1 },
  ]);
  t.deepEqual(
    twice.problems.map((p) => [p.code, p.partition?.index]),
    [['E_LAYOUT_EXTRA', N + 1]],
  );
  t.regex(twice.problems[0]?.message ?? '', /second one named data/);
});

test('E_LAYOUT_TYPE: a fixed partition with another type GUID', (t) => {
  const m = matchLayout(edit(ix('data'), { type: DPS.linuxData }));
  t.deepEqual(
    m.problems.map((p) => [p.code, p.role, p.partition]),
    [['E_LAYOUT_TYPE', 'data', { index: ix('data'), name: 'data' }]],
  );
  t.regex(m.problems[0]?.message ?? '', /has type 0fc63daf-.*data is MilkyWay data 7cb9e8a5-/);
});

test('E_LAYOUT_ATTRIBUTES: read-only missing, or set where the layout writes', (t) => {
  const notRo = matchLayout(edit(ix('certificates'), { attributes: 0n }));
  t.deepEqual(
    notRo.problems.map((p) => [p.code, p.role]),
    [['E_LAYOUT_ATTRIBUTES', 'certificates']],
  );
  t.regex(
    notRo.problems[0]?.message ?? '',
    /0x0000000000000000; certificates has 0x1000000000000000 \(read-only/,
  );
  const ro = matchLayout(edit(ix('data'), { attributes: 1n << 60n }));
  t.deepEqual(
    ro.problems.map((p) => [p.code, p.role]),
    [['E_LAYOUT_ATTRIBUTES', 'data']],
  );
});

test('E_LAYOUT_LABEL: slot names that do not pair, an empty slot A', (t) => {
  const m = matchLayout(edit(ix('coreos-a-verity'), { name: 'milkyway_0.9.0.verity' }));
  t.deepEqual(
    m.problems.map((p) => [p.code, p.role, p.partition?.index]),
    [['E_LAYOUT_LABEL', 'coreos-a-verity', ix('coreos-a-verity')]],
  );
  t.regex(m.problems[0]?.message ?? '', /expects milkyway_1\.0\.0\.verity/);
  const a0 = ix('coreos-a') - 1;
  const emptyA = goodDisk().map((e, i) =>
    i >= a0 && i <= a0 + 2 ? { ...e, name: EMPTY_SLOT, filesystem: null } : e,
  );
  t.deepEqual([...new Set(matchLayout(emptyA).problems.map((p) => p.code))], ['E_LAYOUT_LABEL']);
  // A written B slot (after an update) is fine when its names pair.
  const b0 = ix('coreos-b') - 1;
  const filledB = goodDisk().map((e, i) =>
    i >= b0 && i <= b0 + 2
      ? {
          ...e,
          name: ['milkyway_1.1.0', 'milkyway_1.1.0.verity', 'milkyway_1.1.0.verity-sig'][i - b0] as string,
          filesystem: ['erofs', 'verity', 'verity-sig'][i - b0] as string,
        }
      : e,
  );
  t.deepEqual(matchLayout(filledB).problems, []);
});

test('E_LAYOUT_FILESYSTEM: a partition that holds another file system than its row', (t) => {
  const m = matchLayout(edit(ix('layers'), { filesystem: 'unknown' }));
  t.deepEqual(
    m.problems.map((p) => [p.code, p.role]),
    [['E_LAYOUT_FILESYSTEM', 'layers']],
  );
  t.regex(
    m.problems[0]?.message ?? '',
    new RegExp(`partition ${ix('layers')} layers holds unknown; layers holds ext4`),
  );
  const nonEmptyB = matchLayout(edit(ix('coreos-b'), { filesystem: 'erofs' }));
  t.deepEqual(
    nonEmptyB.problems.map((p) => [p.code, p.role]),
    [['E_LAYOUT_FILESYSTEM', 'coreos-b']],
  );
});
