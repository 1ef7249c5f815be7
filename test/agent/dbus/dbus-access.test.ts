// The local API as an SELinux object manager (agent/dbus/dbus-access.ts): which permission each
// method asks for, against the bus policy file's own split; the USER_AVC text in libselinux's
// layout; the check with SELinux off; and the USER_AVC helper built by the image builder,
// run on this host: the kernel takes the record and prints it as a kernel record (facility
// 0), the kind the agent's denial count reads. SELinux is not active on this host, so the
// policy's decisions are seen in the QEMU guest (test/imagebuild/selinux-qemu.test.ts).

import { closeSync, constants, openSync, readSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { computeAccess } from '../../../agent/core/selinux-state.ts';
import { apiAccess, avcText, METHOD_ACCESS } from '../../../agent/dbus/dbus-access.ts';
import { POLICY_FILE } from '../../../agent/dbus/dbus-daemon.ts';
import { METHODS } from '../../../agent/dbus/dbus-names.ts';
import { buildUserAvcHelper } from '../../../agent/dbus/user-avc-build.ts';
import { run } from '../../../common/exec.ts';

test('METHOD_ACCESS: read is exactly what the bus policy file lets everyone call, control what it keeps for root', async (t) => {
  const xml = await readFile(POLICY_FILE, 'utf8');
  const everyone = xml.slice(xml.indexOf('<policy context="default">'));
  const open = [...everyone.matchAll(/<allow [^>]*send_member="([A-Za-z]+)"/g)].map((m) => m[1]);
  const read = Object.entries(METHOD_ACCESS)
    .filter(([, a]) => a.perm === 'read')
    .map(([n]) => n);
  t.deepEqual(read.sort(), [...open].sort());
  for (const [name, spec] of Object.entries(METHODS))
    t.is(METHOD_ACCESS[name as keyof typeof METHODS].perm, spec.control ? 'control' : 'read', name);
  // A method that names a service is checked against that service's layer.
  for (const name of ['GetService', 'GetLogs', 'StartService', 'StopService', 'RestartService'] as const)
    t.is(METHOD_ACCESS[name].target, 'service', name);
  for (const name of ['GetStatus', 'ListLayers', 'ListServices', 'InstallLayer', 'RemoveLayer'] as const)
    t.is(METHOD_ACCESS[name].target, 'agent', name);
});

test('avcText() writes libselinux’s avc_audit layout, and a caller cannot add fields', (t) => {
  const caller = {
    sender: ':1.7',
    uid: 0,
    pid: 412,
    context: 'system_u:system_r:mway_b_t:s0:c3,c4',
  };
  t.is(
    avcText(
      {
        perm: 'control',
        member: 'InstallLayer',
        caller,
        tcontext: 'system_u:system_r:milkyway_agent_t:s0-s0:c0.c1023',
      },
      false,
    ),
    'avc:  denied  { control } for  member=InstallLayer sender=:1.7 spid=412 scontext=system_u:system_r:mway_b_t:s0:c3,c4 tcontext=system_u:system_r:milkyway_agent_t:s0-s0:c0.c1023 tclass=milkyway_agent_api permissive=0',
  );
  const text = avcText(
    {
      perm: 'read',
      member: 'GetLogs',
      caller: { ...caller, sender: ':1.8 tclass=file permissive=1', pid: undefined },
      tcontext: 'system_u:system_r:mway_a_t:s0:c1,c2',
    },
    true,
  );
  t.is(text.match(/tclass=/g)?.length, 1, text);
  t.regex(text, /sender=:1\.8\?tclass\?file\?permissive\?1 scontext=/);
  t.true(text.endsWith(' permissive=1'));
});

test('apiAccess() without SELinux (no selinuxfs) checks nothing and allows every method', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mway-nosel-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const logs: string[] = [];
  const a = apiAccess({ selinuxfs: dir, log: (_l, m) => logs.push(m) });
  t.false(a.enabled);
  const v = await a.check({ sender: ':1.2', uid: 0, pid: 1, context: undefined }, 'InstallLayer', undefined);
  t.deepEqual(v, { allowed: true, perm: 'control' });
  t.true(
    a.mayRead({ sender: ':1.2', uid: 0, pid: 1, context: undefined }, 'system_u:system_r:mway_a_t:s0:c1,c2'),
  );
  t.deepEqual(logs, []);
});

/** The /dev/kmsg records from now on (non-blocking reads, one record each). */
function kmsgFromEnd(): { read(): string[]; close(): void } {
  const fd = openSync('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK);
  // A fresh /dev/kmsg descriptor starts at the oldest record: skip to the end first.
  const drain = (): string[] => {
    const out: string[] = [];
    const buf = Buffer.alloc(8192);
    for (;;) {
      try {
        const n = readSync(fd, buf, 0, buf.length, null);
        out.push(buf.toString('utf8', 0, n));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') return out;
        if (code === 'EPIPE') continue; // records overwritten since the last read
        throw e;
      }
    }
  };
  drain();
  return { read: drain, close: () => closeSync(fd) };
}

test('the USER_AVC helper builds reproducibly, refuses bad input, and the kernel prints its record as its own', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mway-useravc-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  await buildUserAvcHelper(a);
  await buildUserAvcHelper(b);
  t.deepEqual(await readFile(a), await readFile(b), 'same source, same bytes');
  t.is((await run(a, [], { timeout: 10_000, reject: false })).exitCode, 2);
  t.is((await run(a, [''], { timeout: 10_000, reject: false })).exitCode, 2);
  t.is((await run(a, ['x'.repeat(8001)], { timeout: 10_000, reject: false })).exitCode, 2);
  const kmsg = kmsgFromEnd();
  t.teardown(() => kmsg.close());
  // Not an `avc:  denied` text: this host's own denial counters stay as they are.
  const mark = `mway test: USER_AVC helper ${process.pid}-${Date.now()}`;
  const r = await run(a, [mark], { timeout: 10_000, reject: false });
  t.is(r.exitCode, 0, r.stderr);
  let record: string | undefined;
  for (let i = 0; i < 50 && record === undefined; i++) {
    record = kmsg.read().find((l) => l.includes(mark));
    if (record === undefined) await new Promise((s) => setTimeout(s, 100));
  }
  t.truthy(record, 'the record reached the kernel log');
  // "PRIORITY,SEQ,TIME,FLAGS;audit: type=1107 …": facility 0 (the kernel), type USER_AVC.
  const prefix = Number((record ?? '').split(',')[0]);
  t.is(prefix >> 3, 0, record);
  t.regex(
    record ?? '',
    /;audit: type=1107 audit\([\d.:]+\): pid=\d+ uid=0 .*msg='mway test: USER_AVC helper/,
  );
});

test('computeAccess refuses a class the loaded policy lacks with E_SELINUX_ACCESS, not a bare ENOENT', async (t) => {
  const fs = await mkdtemp(join(tmpdir(), 'mway-selinuxfs-'));
  t.teardown(() => rm(fs, { recursive: true, force: true }));
  const e = t.throws(() =>
    computeAccess('system_u:system_r:a_t:s0', 'system_u:system_r:b_t:s0', 'milkyway_agent_api', 'read', fs),
  );
  t.is((e as { code?: string }).code, 'E_SELINUX_ACCESS');
  t.regex(e?.message ?? '', /milkyway_agent_api read is not in the policy/);
});
