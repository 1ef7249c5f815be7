// A real agent (namespace mode) reports the host's block devices in its signed status; `mway
// facts` shows them as lsblk (util-linux, nobody here wrote it) sees them, and a `fact:` target
// reaches them by their dotted path (`disks.NAME.sizeBytes`), in the real run and the dry run.
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { newIdentity } from '../../keys/index.ts';
import { makeFleetPki } from '../control/command-fixture.ts';
import { jsonOut, until } from '../helpers.ts';
import { startAgentPeer, startFleet } from './_fleet.ts';

const pkiP = makeFleetPki();

test("a namespace agent's signed facts carry the host's disks, and fact:disks.NAME… targets it", async (t) => {
  const p = await pkiP;
  const f = await startFleet(t, p);
  const user = await newIdentity({
    role: 'user',
    name: 'user',
    outDir: join(f.dir, 'user'),
    issuerKey: p.root.key,
    issuerCert: p.root.cert,
  });
  await startAgentPeer(t, f, p, p.p1, user);
  const admin = await f.as(p.admin, 'admin', 120_000);
  const lsblk = JSON.parse(
    (await execa('lsblk', ['-J', '-b', '-d', '-o', 'NAME,SIZE,RO,ROTA'], { timeout: 10_000 })).stdout,
  ) as { blockdevices: Array<{ name: string; size: number; ro: boolean; rota: boolean }> };
  const disk = lsblk.blockdevices.find((d) => !/^(loop|ram|zram|dm-)/.test(d.name));
  if (disk === undefined) return t.fail('the host has no physical disk to compare');

  let facts: Record<string, unknown> | undefined;
  await until('p1 has reported its facts', async () => {
    const rows = jsonOut((await admin('facts', '--json')).stdout) as Array<{
      peer: string;
      status: string;
      facts?: Record<string, unknown>;
    }>;
    facts = rows.find((r) => r.peer === 'p1' && r.status === 'verified')?.facts;
    return facts?.disks !== undefined;
  });
  const disks = facts?.disks as Record<string, { sizeBytes: number; readOnly: boolean; rotational: boolean }>;
  t.deepEqual(
    {
      sizeBytes: disks[disk.name]?.sizeBytes,
      readOnly: disks[disk.name]?.readOnly,
      rotational: disks[disk.name]?.rotational,
    },
    { sizeBytes: disk.size, readOnly: disk.ro, rotational: disk.rota },
  );
  for (const name of Object.keys(disks)) t.notRegex(name, /^(loop|ram|zram)/, 'no unmounted virtual device');

  const target = async (expr: string, ...more: string[]) => {
    const r = await admin('status', '--target', expr, '--json', '--static', ...more);
    return {
      r,
      peers:
        r.exitCode === 0
          ? (jsonOut(r.stdout) as { peers: Array<{ peer: string }> }).peers.map((x) => x.peer)
          : [],
    };
  };
  for (const more of [['--dry-run'], []]) {
    const hit = await target(`fact:disks.${disk.name}.sizeBytes>=${disk.size}`, ...more);
    t.is(hit.r.exitCode, 0, hit.r.stderr);
    t.deepEqual(hit.peers, ['p1'], more.join(' '));
    const miss = await target(`fact:disks.${disk.name}.sizeBytes>${disk.size}`, ...more);
    t.is(miss.r.exitCode, 1, more.join(' '));
    t.regex(miss.r.stdout + miss.r.stderr, /E_TARGET_EMPTY/);
  }
  const ro = await target(`fact:disks.${disk.name}.readOnly=${String(disk.ro)}`, '--dry-run');
  t.deepEqual(ro.peers, ['p1'], ro.r.stderr);
});
