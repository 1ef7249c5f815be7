// A compose volume two services mount, as the agent runs it (PID 1 of a namespace): the two
// layers of project `proj` (groupVolumes, what import-compose makes of a shared volume) see
// the same folder, the group's data group/proj/volumes/shared (2770 root:<gid>), at their own
// paths — one writes there as the layer's own uid, the other reads it back as another uid with
// the group — while a third layer outside the group has no such folder bound, and a layer
// asking for a group the secure config does not grant it is refused naming the volume. The empty
// volume is seeded once, as Docker seeds a named volume, with what the first member's image has
// at its path: exactly one of the two images' files is there, group-owned and group-writable.
import test from 'ava';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { until } from '../../helpers.ts';
import { buildTestLayer } from '../_layers.ts';
import { makePki, makeRoot, startAgent } from '../_namespace.ts';

const WRITE = 'echo "from writer $(id -u)" > /srv/shared/note && exec sleep 600';
const READ =
  'until [ -s /var/lib/peer/note ]; do sleep 0.1; done; ' +
  '{ echo "reader $(id -u) read:"; cat /var/lib/peer/note; } > /var/lib/peer/seen && exec sleep 600';

test('agent: a groupVolumes entry is the group data both layers of a project share, at their own paths; a layer not granted the group is refused', async (t) => {
  t.timeout(180_000);
  const pki = await makePki(t);
  const r = await makeRoot(t, pki, {
    secure: { v: 1, groups: { proj: { gid: 5100, layers: ['proj-writer', 'proj-reader'] } } },
  });
  const layers = join(r.root, 'layers');
  const shared = (path: string) => [{ group: 'proj', volume: 'shared', path }];
  await buildTestLayer(
    pki,
    {
      name: 'proj-writer',
      kind: 'app',
      files: { 'srv/shared/from-writer-image': 'writer image\n' },
      data: { groups: ['proj'] },
      services: [
        {
          name: 'writer',
          user: 'nobody',
          writableRoot: 'ephemeral',
          groupVolumes: shared('/srv/shared'),
          execStart: ['/bin/sh', '-c', WRITE],
        },
      ],
    },
    join(layers, 'proj-writer.mwl'),
  );
  await buildTestLayer(
    pki,
    {
      name: 'proj-reader',
      kind: 'app',
      files: { 'var/lib/peer/from-reader-image': 'reader image\n' },
      data: { groups: ['proj'] },
      services: [
        {
          name: 'reader',
          user: 'nobody',
          writableRoot: 'ephemeral',
          groupVolumes: shared('/var/lib/peer'),
          execStart: ['/bin/sh', '-c', READ],
        },
      ],
    },
    join(layers, 'proj-reader.mwl'),
  );
  // In its manifest's group, but the secure config does not make it a member.
  await buildTestLayer(
    pki,
    {
      name: 'intruder',
      kind: 'app',
      data: { groups: ['proj'] },
      services: [
        {
          name: 'main',
          writableRoot: 'ephemeral',
          groupVolumes: shared('/mnt'),
          execStart: ['/bin/sh', '-c', 'exec sleep 600'],
        },
      ],
    },
    join(layers, 'intruder.mwl'),
  );
  const a = startAgent(t, r);
  await a.waitFor(/boot done: 2 services \(0 failed\), 1 layers refused/, 90_000);
  t.regex(
    a.output(),
    /intruder\/main: its volume shared at \/mnt is group proj's data, which the secure config does not grant intruder/,
  );
  const folder = join(r.root, 'data', 'group', 'proj', 'volumes', 'shared');
  await until(
    'the writer wrote its note',
    async () => (await readFile(join(folder, 'note'), 'utf8').catch(() => '')) !== '',
  );
  const note = await readFile(join(folder, 'note'), 'utf8');
  t.regex(note, /^from writer \d+\n$/);
  const st = await stat(folder);
  t.is(st.uid, 0);
  t.is(st.gid, 5100);
  t.is(st.mode & 0o7777, 0o2770);
  // The file the writer made: its own uid, the group's gid (the folder's setgid bit).
  const f = await stat(join(folder, 'note'));
  t.is(f.gid, 5100);
  // Seeded by whichever member came first, and only by it.
  const seeded = (await readdir(folder)).filter((n) => n.startsWith('from-'));
  t.is(seeded.length, 1, seeded.join(' '));
  const seed = await stat(join(folder, seeded[0] as string));
  t.is(seed.uid, 0);
  t.is(seed.gid, 5100);
  t.is(seed.mode & 0o070, 0o060, 'the group may read and write what the image seeded');
  const seen = async () => readFile(join(folder, 'seen'), 'utf8').catch(() => '');
  await until('the reader read it', async () => /read:\n.+\n$/.test(await seen()));
  const writerUid = /^from writer (\d+)/.exec(note)?.[1];
  const readerUid = /^reader (\d+)/.exec(await seen())?.[1];
  t.not(writerUid, readerUid, 'two layers, two uids');
  t.is(await seen(), `reader ${readerUid} read:\n${note}`);
  await a.kill('SIGTERM');
  t.is(await a.exit, 0);
});
