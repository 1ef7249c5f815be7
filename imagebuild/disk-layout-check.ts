// A disk's GPT against the layout table (platform/disk-layout.ts): which entry plays which
// role, and every way the two disagree — a partition missing, one the layout does not have,
// a wrong type, GPT attributes, label or file system — each with a stable code naming the
// partition. `inspect` shows the roles and problems; `verify` fails on any problem.
//
// Fixed partitions are found by their GPT name, as the agent finds them (PARTLABEL); the
// CoreOS slots, whose names carry the version, by type in disk order (the first root is A).
import {
  DISK_LAYOUT,
  EMPTY_SLOT,
  type PartitionRole,
  type PartitionRow,
  rowAttributeBits,
} from '../platform/index.ts';
import { SLOT_BITS_MASK } from '../update/index.ts';
import type { ImageCode } from './image-codes.ts';

/** The layout check's codes: the `E_LAYOUT_*` rows of imagebuild/image-codes.ts. */
export type LayoutProblemCode = Extract<ImageCode, `E_LAYOUT_${string}`>;

export interface LayoutProblem {
  code: LayoutProblemCode;
  message: string;
  /** The layout's role the problem is about (absent for a partition the layout lacks). */
  role?: PartitionRole;
  /** The GPT entry it is about (absent for a missing one). */
  partition?: { index: number; name: string };
}

/** What the check reads of one GPT entry; `filesystem` as sniffed, when the caller read it. */
export interface LayoutEntry {
  index: number;
  name: string;
  type: string;
  attributes: bigint;
  filesystem?: string | null;
}

export interface LayoutMatch {
  /** The role of each entry (same order as the entries), null when it has none. */
  roles: (PartitionRole | null)[];
  problems: LayoutProblem[];
}

/** What the file system sniffer (disk-read.ts) reports for a row that holds its content. */
function expectedFilesystem(row: PartitionRow): string | null {
  if (row.verity === 'hash') return 'verity';
  if (row.verity === 'sig') return 'verity-sig';
  return row.filesystem;
}

const hex = (v: bigint) => `0x${v.toString(16).padStart(16, '0')}`;

/** Matches `entries` (a disk's GPT, in disk order) to the layout's rows. */
export function matchLayout(entries: readonly LayoutEntry[]): LayoutMatch {
  const roles: (PartitionRole | null)[] = entries.map(() => null);
  const at = new Map<PartitionRole, LayoutEntry>();
  const extra: LayoutProblem[] = [];
  const name = (e: LayoutEntry) => ({ index: e.index, name: e.name });
  const take = (row: PartitionRow, i: number) => {
    roles[i] = row.role;
    at.set(row.role, entries[i] as LayoutEntry);
  };
  for (const row of DISK_LAYOUT) {
    if (typeof row.label !== 'string') continue;
    const label = row.label;
    const found = entries.flatMap((e, i) => (e.name === label ? [i] : []));
    const [first, ...more] = found;
    if (first !== undefined) take(row, first);
    for (const i of more) {
      const e = entries[i] as LayoutEntry;
      roles[i] = null;
      extra.push({
        code: 'E_LAYOUT_EXTRA',
        message: `partition ${e.index} is a second one named ${label} (the agent would mount only the first)`,
        partition: name(e),
      });
    }
  }
  const fixed = new Set(DISK_LAYOUT.flatMap((r) => (typeof r.label === 'string' ? [r.label] : [])));
  for (const row of DISK_LAYOUT) {
    if (typeof row.label === 'string') continue;
    const i = entries.findIndex((e, j) => roles[j] === null && !fixed.has(e.name) && e.type === row.type);
    if (i >= 0) take(row, i);
  }
  for (const [i, e] of entries.entries()) {
    if (roles[i] !== null || extra.some((p) => p.partition?.index === e.index)) continue;
    extra.push({
      code: 'E_LAYOUT_EXTRA',
      message: `partition ${e.index} ${e.name} (type ${e.type}) is not in the MilkyWayLinux layout`,
      partition: name(e),
    });
  }

  const problems: LayoutProblem[] = [];
  for (const row of DISK_LAYOUT) {
    const e = at.get(row.role);
    const fail = (code: LayoutProblemCode, message: string) =>
      problems.push({ code, message, role: row.role, ...(e === undefined ? {} : { partition: name(e) }) });
    if (e === undefined) {
      if (row.optional !== true)
        fail(
          'E_LAYOUT_MISSING',
          typeof row.label === 'string'
            ? `no ${row.role} partition (GPT name ${row.label}, type ${row.type})`
            : `no ${row.role} partition (type ${row.typeName} ${row.type})`,
        );
      continue;
    }
    const where = `partition ${e.index} ${e.name}`;
    if (e.type !== row.type)
      fail('E_LAYOUT_TYPE', `${where} has type ${e.type}; ${row.role} is ${row.typeName} ${row.type}`);
    // A slot's bits 48–56 are run-time state, not layout: stage 1 decrements a boot slot's
    // tries, update/ arms a CoreOS slot's trial (the same bits, bootchain/slot.ts).
    const runtime = row.slotBits === true || (row.slot !== undefined && row.verity === 'data');
    const state = runtime ? SLOT_BITS_MASK : 0n;
    const bits = rowAttributeBits(row) & ~state;
    if ((e.attributes & ~state) !== bits)
      fail(
        'E_LAYOUT_ATTRIBUTES',
        `${where} has GPT attributes ${hex(e.attributes)}; ${row.role} has ${hex(bits)}${row.readOnly ? ' (read-only, bit 60)' : ''}`,
      );
    if (e.filesystem !== undefined) {
      const want =
        e.name === EMPTY_SLOT || (row.slotBits === true && e.filesystem === null)
          ? null
          : expectedFilesystem(row);
      if (e.filesystem !== want)
        fail(
          'E_LAYOUT_FILESYSTEM',
          `${where} holds ${e.filesystem ?? 'nothing'}; ${row.role} holds ${want ?? 'nothing (an empty slot)'}`,
        );
    }
  }
  problems.push(...slotLabelProblems(at), ...extra);
  return { roles, problems };
}

/**
 * A slot is `NAME_VERSION`, `NAME_VERSION.verity`, `NAME_VERSION.verity-sig`, or empty (all
 * three EMPTY_SLOT); slot A is never empty, since it is what boots.
 */
function slotLabelProblems(at: ReadonlyMap<PartitionRole, LayoutEntry>): LayoutProblem[] {
  const problems: LayoutProblem[] = [];
  for (const slot of ['a', 'b'] as const) {
    const rows = DISK_LAYOUT.filter((r) => r.slot === slot);
    const data = rows.find((r) => r.verity === 'data');
    const base = data === undefined ? undefined : at.get(data.role)?.name;
    if (base === undefined) continue;
    for (const row of rows) {
      const e = at.get(row.role);
      if (e === undefined || typeof row.label === 'string') continue;
      const want = base === EMPTY_SLOT ? EMPTY_SLOT : `${base}${row.label.slotSuffix}`;
      let message: string | undefined;
      if (slot === 'a' && e.name === EMPTY_SLOT)
        message = `partition ${e.index} is labelled ${EMPTY_SLOT}: CoreOS A must hold the CoreOS that boots`;
      else if (row.verity === 'data' && base !== EMPTY_SLOT && !/^[^_].*_[^_]+$/.test(base))
        message = `partition ${e.index} ${e.name}: a CoreOS slot is named NAME_VERSION or ${EMPTY_SLOT}`;
      else if (e.name !== want)
        message = `partition ${e.index} is named ${e.name}; slot ${slot} expects ${want}`;
      if (message !== undefined)
        problems.push({
          code: 'E_LAYOUT_LABEL',
          message,
          role: row.role,
          partition: { index: e.index, name: e.name },
        });
    }
  }
  return problems;
}
