// The field-table coder (formats/_field-table.ts): every type round-trips, layouts that
// overlap are refused when declared, and each real header's table covers its layout exactly.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { fieldTable } from '../../formats/_field-table.ts';
import {
  GPT_ENTRY,
  GPT_HEADER,
  NEWC_HEADER,
  PROTECTIVE_MBR,
  USTAR_HEADER,
  VERITY_SUPERBLOCK,
} from '../../formats/index.ts';

const demo = fieldTable('demo', 64, [
  { name: 'magic', offset: 0, size: 4, type: 'text', value: 'DEMO', spec: 'test' },
  { name: 'a', offset: 4, size: 1, type: 'u8', spec: 'test' },
  { name: 'b', offset: 5, size: 2, type: 'u16', spec: 'test' },
  { name: 'c', offset: 7, size: 4, type: 'u32', spec: 'test' },
  { name: 'd', offset: 11, size: 8, type: 'u64', spec: 'test' },
  { name: 'guid', offset: 19, size: 16, type: 'guid', spec: 'test' },
  { name: 'hex', offset: 35, size: 8, type: 'hex', spec: 'test' },
  { name: 'oct', offset: 43, size: 8, type: 'octal', spec: 'test' },
  { name: 'gap', offset: 51, size: 3, type: 'reserved', spec: 'test' },
  { name: 'name', offset: 54, size: 10, type: 'utf16', spec: 'test' },
]);

test('fieldTable() encodes to the offsets declared, little-endian, and decodes the same record', (t) => {
  const rec = {
    a: 0xab,
    b: 0x1234,
    c: 0xdeadbeef,
    d: 0x0102030405060708n,
    guid: 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b',
    hex: 0x1a2b,
    oct: 0o644,
    name: 'héllo',
  };
  const b = demo.encode(rec);
  t.is(b.length, 64);
  const hex = Buffer.from(b).toString('hex');
  t.is(hex.slice(0, 8), Buffer.from('DEMO').toString('hex'));
  t.is(hex.slice(8, 10), 'ab');
  t.is(hex.slice(10, 14), '3412');
  t.is(hex.slice(14, 22), 'efbeadde');
  t.is(hex.slice(22, 38), '0807060504030201');
  // UEFI mixed-endian GUID bytes (the ESP type as sgdisk writes it).
  t.is(hex.slice(38, 70), '2873 2ac1 1ff8 d211 ba4b 00a0 c93e c93b'.replaceAll(' ', ''));
  t.is(Buffer.from(b.subarray(35, 43)).toString('latin1'), '00001a2b');
  t.is(Buffer.from(b.subarray(43, 51)).toString('latin1'), '0000644\0');
  t.deepEqual([...b.subarray(51, 54)], [0, 0, 0]);
  t.deepEqual(demo.decode(b), { magic: 'DEMO', ...rec });
  t.deepEqual(demo.nonZeroReserved(b), []);
  b[52] = 1;
  t.deepEqual(demo.nonZeroReserved(b), ['gap']);
});

test('fieldTable() refuses overlapping, repeated or out-of-layout fields when declared', (t) => {
  t.throws(() =>
    fieldTable('x', 8, [
      { name: 'a', offset: 0, size: 4, type: 'u32', spec: '' },
      { name: 'b', offset: 2, size: 4, type: 'u32', spec: '' },
    ]),
  );
  t.throws(() => fieldTable('x', 8, [{ name: 'a', offset: 6, size: 4, type: 'u32', spec: '' }]));
  t.throws(() =>
    fieldTable('x', 8, [
      { name: 'a', offset: 0, size: 2, type: 'u16', spec: '' },
      { name: 'a', offset: 2, size: 2, type: 'u16', spec: '' },
    ]),
  );
});

test('fieldTable() refuses values that do not fit and input shorter than the layout', (t) => {
  const rec = {
    a: 1,
    b: 1,
    c: 1,
    d: 1n,
    guid: 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b',
    hex: 1,
    oct: 1,
    name: '',
  };
  t.throws(() => demo.encode({ ...rec, hex: 2 ** 32 }), { instanceOf: RangeError });
  t.throws(() => demo.encode({ ...rec, oct: 8 ** 7 }), { instanceOf: RangeError });
  t.throws(() => demo.encode({ ...rec, name: 'x'.repeat(6) }), { instanceOf: RangeError });
  t.throws(() => demo.decode(new Uint8Array(63)), { instanceOf: RangeError });
  const bad = demo.encode(rec);
  bad.set(Buffer.from('0000zz00'), 35);
  const e = t.throws(() => demo.decode(bad, (f, raw) => new Error(`bad ${f.name} ${raw}`)));
  t.is(e?.message, 'bad hex 0000zz00');
});

test('every header table covers its layout exactly: fields in order, no gaps, sizes as the specs give', (t) => {
  const tables = [
    [VERITY_SUPERBLOCK, 512],
    [GPT_HEADER, 92],
    [GPT_ENTRY, 128],
    [PROTECTIVE_MBR, 512],
    [NEWC_HEADER, 110],
    [USTAR_HEADER, 512],
  ] as const;
  for (const [table, size] of tables) {
    t.is(table.size, size, table.name);
    let at = 0;
    for (const f of table.fields) {
      t.is(f.offset as number, at, `${table.name}.${f.name}`);
      t.true(f.spec.length > 0, `${table.name}.${f.name} cites its spec`);
      at += f.size;
    }
    t.is(at, size, `${table.name} ends at its size`);
  }
});

test('decoding random bytes with any header table never throws anything but its coded or range errors', (t) => {
  for (const table of [VERITY_SUPERBLOCK, GPT_HEADER, GPT_ENTRY, NEWC_HEADER, USTAR_HEADER]) {
    for (let i = 0; i < 300; i++) {
      const b = randomBytes(table.size);
      try {
        table.decode(b, () => new SyntaxError('bad number'));
      } catch (e) {
        t.true(e instanceof SyntaxError, `${table.name}: ${String(e)}`);
      }
    }
  }
});
