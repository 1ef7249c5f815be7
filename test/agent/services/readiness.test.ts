// Readiness polling (agent/services/readiness/poll.ts): probes start within milliseconds and back off to a
// ceiling, never polling slower than the ceiling however long a service takes; the exec probe's nsenter argv.
import test from 'ava';
import { probeArgs } from '../../../agent/services/readiness/exec-probe.ts';
import { pollDelay } from '../../../agent/services/readiness/poll.ts';

test('pollDelay() starts at 5 ms, doubles, and stays at the ceiling', (t) => {
  t.deepEqual(
    Array.from({ length: 7 }, (_, i) => pollDelay(i, 50)),
    [5, 10, 20, 40, 50, 50, 50],
  );
  t.is(pollDelay(1_000_000, 100), 100);
});

test("probeArgs(): with SELinux the probe follows the service's own context and setpriv sets none", (t) => {
  const spec = { uid: 61184, gid: 61184, capabilityBoundingSet: [], supplementaryGids: [] };
  const followed = probeArgs(
    { ...spec, selinuxLabel: 'system_u:system_r:mway_kv_t:s0:c0,c1' },
    42,
    ['redis-cli', 'ping'],
    true,
  );
  t.is(followed[0], '--target=42');
  t.true(followed.includes('--follow-context'));
  t.true(followed.indexOf('--follow-context') < followed.indexOf('--'));
  // The exec of setpriv, found in the sandbox's root, is what enters the domain: it writes no label.
  t.false(followed.includes('--selinux-label'));
  t.deepEqual(followed.slice(-2), ['redis-cli', 'ping']);
  // It starts at the sandbox's / (nsenter opens what --wd names; the agent may not read a volume).
  t.true(followed.includes('--wd=/proc/42/root'));
  t.true(probeArgs(spec, 7, ['true'], false).includes('--wd'));
  t.false(probeArgs(spec, 7, ['true'], false).includes('--follow-context'));
});
