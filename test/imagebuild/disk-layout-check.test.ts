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
  const swapped = [d[0], d[4], d[2], d[3], d[1], ...d.slice(5)] as LayoutEntry[];
  const s = matchLayout(swapped);
  t.is(s.roles[1], 'coreos-a');
  t.true(s.problems.some((p) => p.code === 'E_LAYOUT_LABEL' && p.partition?.index === 5));
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
  const d = [...goodDisk(), { index: 15, name: 'swap', type: DPS.linuxData, attributes: 0n }];
  const m = matchLayout(d);
  t.deepEqual(
    m.problems.map((p) => [p.code, p.partition]),
    [['E_LAYOUT_EXTRA', { index: 15, name: 'swap' }]],
  );
  t.is(m.roles[14], null);
  const twice = matchLayout([...goodDisk(), { ...(goodDisk()[12] as LayoutEntry), index: 15 }]);
  t.deepEqual(
    twice.problems.map((p) => [p.code, p.partition?.index]),
    [['E_LAYOUT_EXTRA', 15]],
  );
  t.regex(twice.problems[0]?.message ?? '', /second one named data/);
});

test('E_LAYOUT_TYPE: a fixed partition with another type GUID', (t) => {
  const m = matchLayout(edit(13, { type: DPS.linuxData }));
  t.deepEqual(
    m.problems.map((p) => [p.code, p.role, p.partition]),
    [['E_LAYOUT_TYPE', 'data', { index: 13, name: 'data' }]],
  );
  t.regex(m.problems[0]?.message ?? '', /has type 0fc63daf-.*data is MilkyWay data 7cb9e8a5-/);
});

test('E_LAYOUT_ATTRIBUTES: read-only missing, or set where the layout writes', (t) => {
  const notRo = matchLayout(edit(8, { attributes: 0n }));
  t.deepEqual(
    notRo.problems.map((p) => [p.code, p.role]),
    [['E_LAYOUT_ATTRIBUTES', 'certificates']],
  );
  t.regex(
    notRo.problems[0]?.message ?? '',
    /0x0000000000000000; certificates has 0x1000000000000000 \(read-only/,
  );
  const ro = matchLayout(edit(13, { attributes: 1n << 60n }));
  t.deepEqual(
    ro.problems.map((p) => [p.code, p.role]),
    [['E_LAYOUT_ATTRIBUTES', 'data']],
  );
});

test('E_LAYOUT_LABEL: slot names that do not pair, an empty slot A', (t) => {
  const m = matchLayout(edit(3, { name: 'milkyway_0.9.0.verity' }));
  t.deepEqual(
    m.problems.map((p) => [p.code, p.role, p.partition?.index]),
    [['E_LAYOUT_LABEL', 'coreos-a-verity', 3]],
  );
  t.regex(m.problems[0]?.message ?? '', /expects milkyway_1\.0\.0\.verity/);
  const emptyA = goodDisk().map((e, i) =>
    i >= 1 && i <= 3 ? { ...e, name: EMPTY_SLOT, filesystem: null } : e,
  );
  t.deepEqual([...new Set(matchLayout(emptyA).problems.map((p) => p.code))], ['E_LAYOUT_LABEL']);
  // A written B slot (after an update) is fine when its names pair.
  const filledB = goodDisk().map((e, i) =>
    i >= 4 && i <= 6
      ? {
          ...e,
          name: ['milkyway_1.1.0', 'milkyway_1.1.0.verity', 'milkyway_1.1.0.verity-sig'][i - 4] as string,
          filesystem: ['erofs', 'verity', 'verity-sig'][i - 4] as string,
        }
      : e,
  );
  t.deepEqual(matchLayout(filledB).problems, []);
});

test('E_LAYOUT_FILESYSTEM: a partition that holds another file system than its row', (t) => {
  const m = matchLayout(edit(12, { filesystem: 'unknown' }));
  t.deepEqual(
    m.problems.map((p) => [p.code, p.role]),
    [['E_LAYOUT_FILESYSTEM', 'layers']],
  );
  t.regex(m.problems[0]?.message ?? '', /partition 12 layers holds unknown; layers holds ext4/);
  const nonEmptyB = matchLayout(edit(5, { filesystem: 'erofs' }));
  t.deepEqual(
    nonEmptyB.problems.map((p) => [p.code, p.role]),
    [['E_LAYOUT_FILESYSTEM', 'coreos-b']],
  );
});
