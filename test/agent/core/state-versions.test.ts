// The agent's state files carry a version: each reader takes today's unversioned form
// (version 0) and rewrites it as the current version atomically, refuses a newer version
// with E_STATE_VERSION leaving the file as it is, and never reads damage as "empty".
import test from 'ava';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UID_TABLE_VERSION, UidTable } from '../../../agent/layers/uid-table.ts';
import { MEMBERSHIPS_VERSION, MembershipStore } from '../../../agent/remote/membership-store.ts';
import { REPLAY_CACHE_VERSION, ReplayCache } from '../../../agent/remote/replay-cache.ts';
import { nextOperatorSeq, SEQ_FILE_VERSION, seqFile } from '../../../control/operator/index.ts';
import { tempDir } from '../../helpers.ts';

const NOW = new Date('2026-12-01T00:00:00Z');
const KEEP = '2026-12-02T00:00:00.000Z';

/** Only the file itself is left in the folder: no temporary file of an atomic write. */
async function onlyFiles(t: { deepEqual: (a: unknown, b: unknown) => void }, dir: string, names: string[]) {
  t.deepEqual((await readdir(dir)).sort(), [...names].sort());
}

test('uids.json of version 0 (a bare object) is read and rewritten as version 2: same uids, a category pair each', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'uids.json');
  await writeFile(path, `${JSON.stringify({ web: 61184, db: 61185 }, null, 2)}\n`);
  const table = await UidTable.open(path);
  t.deepEqual(await table.allocate('web'), { uid: 61184, gid: 61184, categories: [0, 1] });
  t.deepEqual(JSON.parse(await readFile(path, 'utf8')), {
    version: UID_TABLE_VERSION,
    layers: { web: { uid: 61184, categories: [0, 1] }, db: { uid: 61185, categories: [0, 2] } },
  });
  // A new layer gets the next free uid and pair, and the file stays version 2.
  t.deepEqual(await table.allocate('cache'), { uid: 61186, gid: 61186, categories: [0, 3] });
  const again = await UidTable.open(path);
  t.deepEqual(again.map, { web: 61184, db: 61185, cache: 61186 });
  t.deepEqual(again.get('cache')?.categories, [0, 3]);
  await onlyFiles(t, dir, ['uids.json']);
});

test('uids.json of version 1 gets category pairs in uid order, the uids kept', async (t) => {
  const path = join(await tempDir(t), 'uids.json');
  await writeFile(path, JSON.stringify({ version: 1, uids: { b: 61190, a: 61184 } }));
  const table = await UidTable.open(path);
  t.deepEqual(table.get('a'), { uid: 61184, gid: 61184, categories: [0, 1] });
  t.deepEqual(table.get('b'), { uid: 61190, gid: 61190, categories: [0, 2] });
  t.is(JSON.parse(await readFile(path, 'utf8')).version, 2);
});

test('a layer named "version" in a version-0 uids.json is a layer, not a version', async (t) => {
  const path = join(await tempDir(t), 'uids.json');
  await writeFile(path, JSON.stringify({ version: 61184 }));
  t.deepEqual((await UidTable.open(path)).map, { version: 61184 });
  t.deepEqual(JSON.parse(await readFile(path, 'utf8')), {
    version: 2,
    layers: { version: { uid: 61184, categories: [0, 1] } },
  });
});

test('uids.json of a newer version is refused with E_STATE_VERSION and left unchanged', async (t) => {
  const path = join(await tempDir(t), 'uids.json');
  const text = JSON.stringify({ version: UID_TABLE_VERSION + 1, uids: { web: 61184 }, owners: {} });
  await writeFile(path, text);
  await t.throwsAsync(UidTable.open(path), { code: 'E_STATE_VERSION', message: /version 3.*knows up to 2/ });
  t.is(await readFile(path, 'utf8'), text);
});

test('a damaged uids.json is refused (E_UID_TABLE), not read as empty', async (t) => {
  const path = join(await tempDir(t), 'uids.json');
  for (const text of [
    '{"web": ',
    '{"web": 12}',
    '{"version": 1, "uids": []}',
    '[1, 2]',
    '{"version": 2, "layers": {"a": {"uid": 61184, "categories": [3, 3]}}}',
    '{"version": 2, "layers": {"a": {"uid": 61184, "categories": [1, 1024]}}}',
    '{"version": 2, "layers": {"a": {"uid": 61184, "categories": [0, 1]}, "b": {"uid": 61185, "categories": [0, 1]}}}',
    '{"version": 2, "layers": {"a": {"uid": 61184, "categories": [0, 1]}, "b": {"uid": 61184, "categories": [0, 2]}}}',
  ]) {
    await writeFile(path, text);
    const e = await t.throwsAsync(UidTable.open(path));
    t.true(['E_UID_TABLE', 'E_STATE_CORRUPT'].includes((e as { code?: string }).code ?? ''), text);
    t.is(await readFile(path, 'utf8'), text);
  }
});

test('a version-0 replay log (no version line) and replay-cache.json are read and rewritten as version 1', async (t) => {
  const dir = await tempDir(t);
  // What agents before versions left: the first format's JSON and the log without a version line.
  await writeFile(join(dir, 'replay-cache.json'), JSON.stringify({ old: { digest: 'd0', keepUntil: KEEP } }));
  await writeFile(
    join(dir, 'replay-cache.log'),
    [
      JSON.stringify({ c: 'one', d: 'd1', k: KEEP, o: 'op', s: 7 }),
      JSON.stringify({ r: 'one', e: { payload: 'e30' } }),
      JSON.stringify({ o: 'op2', h: 40, u: [39, 40] }),
      '',
    ].join('\n'),
  );
  const cache = new ReplayCache(dir);
  await cache.load(NOW);
  t.is(cache.size, 2);
  t.is(cache.get('old')?.digest, 'd0');
  t.deepEqual(cache.get('one')?.result, { payload: 'e30' } as never);
  t.is(cache.highestSeq('op'), 7);
  t.is(cache.highestSeq('op2'), 40);
  t.is(cache.checkSeq({ operator: 'op2', seq: 39 }), 'reused');
  const lines = (await readFile(join(dir, 'replay-cache.log'), 'utf8')).trim().split('\n');
  t.deepEqual(JSON.parse(lines[0] ?? ''), { version: REPLAY_CACHE_VERSION });
  await onlyFiles(t, dir, ['replay-cache.log']);
  // Read back as version 1: the same state.
  const again = new ReplayCache(dir);
  await again.load(NOW);
  t.is(again.size, 2);
  t.false(await again.claim('one', { digest: 'd1', keepUntil: KEEP }, NOW));
});

test('a replay log of a newer version is refused with E_STATE_VERSION before anything is touched', async (t) => {
  const dir = await tempDir(t);
  const log = `${JSON.stringify({ version: REPLAY_CACHE_VERSION + 1 })}\n${JSON.stringify({ x: 1 })}\n`;
  const legacy = JSON.stringify({ old: { digest: 'd0', keepUntil: KEEP } });
  await writeFile(join(dir, 'replay-cache.log'), log);
  await writeFile(join(dir, 'replay-cache.json'), legacy);
  await t.throwsAsync(new ReplayCache(dir).load(NOW), { code: 'E_STATE_VERSION' });
  t.is(await readFile(join(dir, 'replay-cache.log'), 'utf8'), log);
  t.is(await readFile(join(dir, 'replay-cache.json'), 'utf8'), legacy);
});

test('a replay log line that is no claim, result or window is E_STATE_CORRUPT', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'replay-cache.log'), `{"version":1}\n{"x":1}\n{"c":"a","d":"d","k":"${KEEP}"}\n`);
  await t.throwsAsync(new ReplayCache(dir).load(NOW), { code: 'E_STATE_CORRUPT', message: /line 2/ });
});

test('memberships.json of version 0 (a bare list) is read and rewritten as version 1; newer and damaged ones are refused', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'memberships.json');
  const envelopes = [{ v: 1, type: 'membership', payload: 'e30', signatures: [] }];
  await writeFile(path, JSON.stringify(envelopes));
  await new MembershipStore(dir).load();
  t.deepEqual(JSON.parse(await readFile(path, 'utf8')), {
    version: MEMBERSHIPS_VERSION,
    memberships: envelopes,
  });
  await onlyFiles(t, dir, ['memberships.json']);
  await new MembershipStore(dir).load();
  t.deepEqual(JSON.parse(await readFile(path, 'utf8')).memberships, envelopes);

  const newer = JSON.stringify({ version: MEMBERSHIPS_VERSION + 1, memberships: envelopes });
  await writeFile(path, newer);
  await t.throwsAsync(new MembershipStore(dir).load(), { code: 'E_STATE_VERSION' });
  t.is(await readFile(path, 'utf8'), newer);
  for (const text of ['{"groups": []}', '{"version": 1}', '[1,']) {
    await writeFile(path, text);
    await t.throwsAsync(new MembershipStore(dir).load(), { code: 'E_STATE_CORRUPT' }, text);
    t.is(await readFile(path, 'utf8'), text);
  }
});

test('an operator sequence counter of version 0 continues and is written as version 1; a newer one is refused', async (t) => {
  const dir = await tempDir(t);
  await mkdir(dir, { recursive: true });
  const fp = 'ab'.repeat(32);
  const file = seqFile(dir, fp);
  await writeFile(file, JSON.stringify({ seq: 41 }));
  t.is(await nextOperatorSeq(dir, fp), 42);
  t.deepEqual(JSON.parse(await readFile(file, 'utf8')), { version: SEQ_FILE_VERSION, seq: 42 });
  t.is(await nextOperatorSeq(dir, fp), 43);
  const newer = JSON.stringify({ version: SEQ_FILE_VERSION + 1, counter: '43' });
  await writeFile(file, newer);
  await t.throwsAsync(nextOperatorSeq(dir, fp), { code: 'E_STATE_VERSION' });
  t.is(await readFile(file, 'utf8'), newer);
});
