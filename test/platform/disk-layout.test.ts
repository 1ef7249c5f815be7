// The disk layout table (platform/disk-layout.ts) and what is derived from it: GPT names and
// types, the agent's mounts and default paths, the spec's default sizes, the size rules and
// the table in doc/disk-layout.md.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { parseAgentConfig } from '../../agent/core/agent-config.ts';
import { DPS, encodeAttributes } from '../../formats/index.ts';
import { DEFAULT_SIZES } from '../../imagebuild/image-spec.ts';
import {
  DEFAULT_PARTITION_SIZES,
  DISK_LAYOUT,
  EMPTY_SLOT,
  LAYOUT_PATHS,
  layoutMounts,
  layoutRow,
  MILKYWAY,
  MOUNT_POINTS,
  partitionBytes,
  partitionLabel,
  rowAttributeBits,
} from '../../platform/index.ts';
import { DOC, layoutTable, withLayoutTable } from '../../scripts/disk-layout-doc.ts';

const MiB = 1 << 20;

test('DISK_LAYOUT: one row per role, fixed GPT names unique and within GPT’s 36 UTF-16 units', (t) => {
  const roles = DISK_LAYOUT.map((r) => r.role);
  t.is(new Set(roles).size, roles.length);
  const labels = DISK_LAYOUT.flatMap((r) => (typeof r.label === 'string' ? [r.label] : []));
  t.is(new Set(labels).size, labels.length);
  for (const l of labels) t.true(l.length <= 36 && l !== EMPTY_SLOT, l);
  // Rows sharing a type GUID without a fixed name are told apart by disk order only within
  // one A/B pair (boot-a / boot-b share a type but are found by name).
  const byType = Map.groupBy(
    DISK_LAYOUT.filter((r) => typeof r.label !== 'string'),
    (r) => r.type,
  );
  for (const [type, rows] of byType)
    if (rows.length > 1)
      t.deepEqual(
        rows.map((r) => r.slot),
        ['a', 'b'],
        type,
      );
});

test('DISK_LAYOUT: DPS types for the ESP and the CoreOS slots, MilkyWay types for the rest', (t) => {
  t.is(layoutRow('esp').type, DPS.esp);
  for (const s of ['a', 'b'] as const) {
    t.is(layoutRow(`coreos-${s}`).type, DPS.root);
    t.is(layoutRow(`coreos-${s}-verity`).type, DPS.rootVerity);
    // Not DPS root-verity-sig: that one promises systemd a PKCS#7 signature.
    t.is(layoutRow(`coreos-${s}-verity-sig`).type, MILKYWAY.coreosVeritySig);
  }
  t.is(layoutRow('certificates').type, MILKYWAY.certificates);
  t.is(layoutRow('peer-identity').type, MILKYWAY.peerIdentity);
});

test('partitionLabel(): fixed names, name_version slots, the empty slot', (t) => {
  t.is(partitionLabel(layoutRow('data'), 'milkyway_1.0.0'), 'data');
  t.is(partitionLabel(layoutRow('coreos-a'), 'milkyway_1.0.0'), 'milkyway_1.0.0');
  t.is(partitionLabel(layoutRow('coreos-a-verity'), 'milkyway_1.0.0'), 'milkyway_1.0.0.verity');
  t.is(partitionLabel(layoutRow('coreos-b-verity-sig'), EMPTY_SLOT), EMPTY_SLOT);
});

test('rowAttributeBits(): bit 60 exactly on the read-only rows, nothing else but the bits a row declares', (t) => {
  for (const r of DISK_LAYOUT)
    t.is(rowAttributeBits(r), (r.readOnly ? 1n << 60n : 0n) | (r.gptAttributes?.other ?? 0n), r.role);
  // Slot a's boot partition is built known good: priority 2, successful.
  t.is(rowAttributeBits(layoutRow('boot-a')), (2n << 48n) | (1n << 56n));
  t.is(rowAttributeBits(layoutRow('coreos-a')), encodeAttributes({ readOnly: true }));
});

test('layoutMounts(): the agent config mounts, by PARTLABEL, ro exactly where the row is read-only', (t) => {
  // Pinned literally: these bytes are in every CoreOS image's /etc/milkyway/agent.json.
  t.deepEqual(layoutMounts({ optional: [] }), [
    {
      source: 'PARTLABEL=certificates',
      target: '/certs',
      type: 'erofs',
      options: 'ro,nodev,nosuid,noexec',
      context: 'system_u:object_r:milkyway_certs_t:s0',
    },
    {
      source: 'PARTLABEL=secure-config',
      target: '/config',
      type: 'erofs',
      options: 'ro,nodev,nosuid,noexec',
      context: 'system_u:object_r:milkyway_config_t:s0',
    },
    {
      source: 'PARTLABEL=secure-dynamic-config',
      target: '/config-secure-dynamic',
      type: 'ext4',
      options: 'rw,nodev,nosuid,noexec',
      context: 'system_u:object_r:milkyway_config_t:s0',
    },
    {
      source: 'PARTLABEL=dynamic-config',
      target: '/config-dynamic',
      type: 'ext4',
      options: 'rw,nodev,nosuid,noexec',
      context: 'system_u:object_r:milkyway_config_t:s0',
    },
    {
      source: 'PARTLABEL=layers',
      target: '/layers',
      type: 'ext4',
      options: 'rw,nodev,nosuid,noexec',
      context: 'system_u:object_r:milkyway_layer_store_t:s0',
    },
    { source: 'PARTLABEL=data', target: '/data', type: 'ext4', options: 'rw,nodev,nosuid' },
  ]);
  t.deepEqual(layoutMounts({ optional: ['peer-identity'] }).at(-1), {
    source: 'PARTLABEL=peer-identity',
    target: '/identity',
    type: 'ext4',
    options: 'ro,nodev,nosuid,noexec',
    context: 'system_u:object_r:milkyway_identity_t:s0',
  });
  t.deepEqual(MOUNT_POINTS, [
    '/certs',
    '/config',
    '/config-secure-dynamic',
    '/config-dynamic',
    '/layers',
    '/data',
    '/identity',
  ]);
});

test("the agent's default paths are where the layout mounts those partitions", (t) => {
  const c = parseAgentConfig({}, { root: '/' });
  t.is(c.trustAnchorsDir, LAYOUT_PATHS.trustAnchorsDir);
  t.is(c.trustAnchorsDir, '/certs');
  t.is(c.secureConfig, '/config/secure.json');
  t.is(c.layersDir, '/layers');
  t.is(c.dataDir, '/data');
});

test("the image spec's default partition sizes are the rows' defaults", (t) => {
  t.deepEqual({ ...DEFAULT_PARTITION_SIZES }, { ...DEFAULT_SIZES });
});

test('partitionBytes(): computed, exact and growing sizes', (t) => {
  const sizes = { ...DEFAULT_PARTITION_SIZES };
  const coreos = layoutRow('coreos-a');
  // coreos 0: the content + 25 %, rounded up to whole MiB.
  t.is(partitionBytes(coreos, sizes, 100 * MiB), 125 * MiB);
  t.is(partitionBytes(coreos, sizes, 100 * MiB + 1), 126 * MiB);
  // An explicit size is exact, even when the content does not fit (the builder refuses that).
  t.is(partitionBytes(coreos, { ...sizes, coreos: 50 }, 100 * MiB), 50 * MiB);
  t.is(partitionBytes(layoutRow('coreos-a-verity'), sizes, 4096), MiB);
  t.is(partitionBytes(layoutRow('coreos-a-verity-sig'), sizes, 16384), MiB);
  const layers = layoutRow('layers');
  t.is(partitionBytes(layers, sizes, 0), 128 * MiB);
  t.is(partitionBytes(layers, sizes, 200 * MiB + 5), 201 * MiB);
  t.is(partitionBytes(layoutRow('esp'), sizes, 0), 64 * MiB);
});

test('doc/disk-layout.md holds the table rendered from DISK_LAYOUT (node scripts/disk-layout-doc.ts)', async (t) => {
  const doc = await readFile(DOC, 'utf8');
  t.is(doc, withLayoutTable(doc), 'run node scripts/disk-layout-doc.ts');
  const table = layoutTable().split('\n');
  t.is(table.length, DISK_LAYOUT.length + 2);
  t.regex(table[2] ?? '', /^\| 1 +\| `esp` +\| DPS ESP `c12a7328-…`/);
});
