// The AVC denial count (agent/core/avc-denials.ts): which /dev/kmsg records are the kernel's
// denials, and the counter's read loop fed one record per write through a FIFO (as /dev/kmsg
// hands out one record per read), then on this host's own /dev/kmsg, where the kernel itself
// marks a record a process wrote as LOG_USER, so a forged denial is not counted.
import test from 'ava';
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DenialCounter, isKernelDenial, suppressedAuditRecords } from '../../../agent/core/avc-denials.ts';
import { run } from '../../../common/exec.ts';

const AVC =
  'audit: type=1400 audit(1700000000.123:45): avc:  denied  { read } for  pid=9 comm="cat" scontext=system_u:system_r:mway_a_t:s0:c0,c1 tcontext=system_u:object_r:mway_b_data_t:s0:c0,c2 tclass=file permissive=0';

test('isKernelDenial() counts the kernel AVC records, never one a process wrote to /dev/kmsg', (t) => {
  t.true(isKernelDenial(`5,812,2345678,-;${AVC}`));
  t.true(isKernelDenial(`4,813,2345679,-;${AVC}`));
  // Facility user (8 + level): what `echo … > /dev/kmsg` gives.
  t.false(isKernelDenial(`14,814,2345680,-;${AVC}`));
  t.false(
    isKernelDenial(
      '6,815,2345681,-;audit: type=1403 audit(1.2:3): auid=4294967295 ses=4294967295 lsm=selinux res=1',
    ),
  );
  t.false(isKernelDenial('no record'));
});

test('isKernelDenial() counts a USER_AVC only when the kernel names the agent as its sender', (t) => {
  const user = (subj: string, msg: string) =>
    `5,820,2345690,-;audit: type=1107 audit(1700000001.5:46): pid=334 uid=0 auid=4294967295 ses=4294967295 subj=${subj} msg='${msg}'`;
  const agent = 'system_u:system_r:milkyway_agent_t:s0-s0:c0.c1023';
  const layer = 'system_u:system_r:mway_a_t:s0:c0,c1';
  const avc =
    'avc:  denied  { control } for  member=InstallLayer sender=:1.4 spid=338 scontext=system_u:system_r:mway_a_t:s0:c0,c1 tcontext=system_u:system_r:milkyway_agent_t:s0-s0:c0.c1023 tclass=milkyway_agent_api permissive=0';
  t.true(isKernelDenial(user(agent, avc)), 'the agent’s own (its local API, or dbus-daemon)');
  // A layer's root service with CAP_AUDIT_WRITE can send one, the kernel says who it is.
  t.false(isKernelDenial(user(layer, avc)));
  t.false(isKernelDenial(user(layer, `x subj=${agent} ${avc}`)), 'a subj= inside its own text');
  t.false(isKernelDenial(user(agent, 'op=something res=1')), 'not a denial');
});

test('suppressedAuditRecords() reads the kernel rate limit line, only from the kernel', (t) => {
  t.is(suppressedAuditRecords('4,900,3000000,-;kauditd_printk_skb: 17 callbacks suppressed\n'), 17);
  t.is(suppressedAuditRecords('12,901,3000001,-;kauditd_printk_skb: 17 callbacks suppressed\n'), 0);
  t.is(suppressedAuditRecords('4,902,3000002,-;net_ratelimit: 5 callbacks suppressed\n'), 0);
  t.is(suppressedAuditRecords('junk'), 0);
});

test('DenialCounter reads record after record: kernel denials, gaps in the sequence, suppressed records', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mway-avc-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const fifo = join(dir, 'kmsg');
  await run('mkfifo', [fifo], { timeout: 10_000 });
  const c = new DenialCounter();
  c.start(fifo, 60_000);
  t.teardown(() => c.stop());
  const w = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
  t.teardown(() => closeSync(w));
  const record = (text: string) => {
    writeSync(w, text);
    c.drain();
  };
  c.drain();
  t.is(c.denials, 0, 'an empty log: nothing, and drain() returns');
  record(`6,0,100,-;Linux version 6.1.0\n`);
  record(`5,1,200,-;${AVC}\n`);
  t.is(c.denials, 1);
  t.is(c.last, AVC);
  record(`13,2,300,-;forged: ${AVC}\n`);
  t.is(c.denials, 1, 'a LOG_USER record is never a denial');
  t.is(c.unseen, 0);
  // Records 3 to 6 were overwritten before this read: four records that may have been denials.
  record(`5,7,400,-;${AVC.replace('{ read }', '{ write }')}\n SUBSYSTEM=selinux\n`);
  t.is(c.denials, 2);
  t.is(c.lost, 4);
  t.regex(c.last ?? '', /\{ write \}/);
  record('4,8,500,-;kauditd_printk_skb: 9 callbacks suppressed\n');
  t.is(c.suppressed, 9);
  t.is(c.unseen, 13);
  t.is(c.records, 5);
  c.add('dbus: denied GetStatus');
  t.is(c.denials, 3, 'the agent adds its own denials');
});

test('DenialCounter without a log to read counts nothing and never throws', (t) => {
  const c = new DenialCounter();
  c.start('/nonexistent/kmsg');
  c.drain();
  t.is(c.denials, 0);
  c.stop();
});

test("DenialCounter on this host's /dev/kmsg: a denial a process writes there is not counted", (t) => {
  // The suite runs as root (namespaces, loop devices), so /dev/kmsg is writable: an open that
  // fails is a failure of this test, not a reason to pass it.
  const w = openSync('/dev/kmsg', 'w');
  const c = new DenialCounter();
  c.start('/dev/kmsg', 60_000);
  t.teardown(() => c.stop());
  c.drain();
  const before = { denials: c.denials, records: c.records };
  // Priority 5 with no facility: the kernel files it as LOG_USER (printk.c devkmsg_write).
  writeSync(w, `<5>${AVC} (written by test/agent/core/avc-denials.test.ts)\n`);
  closeSync(w);
  c.drain();
  t.true(c.records > before.records, 'the counter read the forged record');
  t.is(c.denials, before.denials);
});
