// Readiness polling (agent/services/readiness/poll.ts): probes start within milliseconds and back off to a
// ceiling, never polling slower than the ceiling however long a service takes; the exec probe's mway-sandbox-exec argv.
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

test("probeArgs(): with SELinux the probe follows the service's own context; it drops to the service's credentials itself", (t) => {
  const spec = {
    uid: 61184,
    gid: 61184,
    capabilityBoundingSet: ['net_bind_service'],
    supplementaryGids: [900, 901],
    workingDirectory: '/srv',
  };
  const followed = probeArgs(
    { ...spec, selinuxLabel: 'system_u:system_r:mway_kv_t:s0:c0,c1' },
    42,
    ['redis-cli', 'ping'],
    true,
  );
  t.is(followed[0], '--target=42');
  t.true(followed.includes('--follow-context'));
  t.true(followed.indexOf('--follow-context') < followed.indexOf('--'));
  // No setpriv of the sandbox's root: the helper drops to exactly the service's credentials.
  t.false(followed.includes('setpriv'));
  for (const a of ['--uid=61184', '--gid=61184', '--groups=900,901', '--caps=CAP_NET_BIND_SERVICE'])
    t.true(followed.includes(a), a);
  t.deepEqual(followed.slice(-3), ['--', 'redis-cli', 'ping']);
  // It starts at the sandbox's / (the agent may not enter a volume); otherwise the service's directory.
  t.true(followed.includes('--wd=/'));
  t.true(probeArgs(spec, 7, ['true'], false).includes('--wd=/srv'));
  t.false(probeArgs(spec, 7, ['true'], false).includes('--follow-context'));
});
