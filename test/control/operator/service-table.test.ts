import test from 'ava';
import { selinuxBrief } from '../../../control/operator/cli/selinux-view.ts';
import { serviceTable } from '../../../control/operator/cli/shared.ts';

test('service list is a table with every service and nothing cut off', (t) => {
  const long = `web/${'x'.repeat(90)}`;
  const text = serviceTable([
    {
      name: 'web/nginx',
      layer: 'web',
      state: 'running',
      pid: 4242,
      restarts: 0,
      since: '2026-12-02T20:00:00.000Z',
    },
    {
      name: long,
      layer: 'web',
      state: 'failed',
      restarts: 5,
      since: '2026-12-02T20:01:00.000Z',
      error: 'start limit hit',
    },
  ]);
  const lines = String(text).split('\n');
  t.is(lines.length, 3);
  t.regex(lines[0] as string, /^SERVICE +LAYER +STATE +PID +RESTARTS +SINCE +ERROR$/);
  t.regex(lines[1] as string, /^web\/nginx +web +running +4242 +0 +2026-12-02T20:00:00\.000Z$/);
  t.true((lines[2] as string).startsWith(long));
  t.regex(lines[2] as string, /failed +5 +2026-12-02T20:01:00\.000Z +start limit hit$/);
  t.is(serviceTable([]), undefined);
  t.is(serviceTable([{ text: 'a log line' }]), undefined);
});

test("with SELinux on the peer, the table names each service's domain and pair", (t) => {
  const selinux = {
    context: 'system_u:system_r:mway_web_t:s0:c0,c1',
    domain: 'mway_web_t',
    level: 's0:c0,c1',
  };
  const lines = String(
    serviceTable([
      { name: 'web/httpd', layer: 'web', state: 'running', pid: 7, restarts: 0, since: 'T', selinux },
      { name: 'web/old', layer: 'web', state: 'stopped', restarts: 0, since: 'T' },
    ]),
  ).split('\n');
  t.regex(lines[0] as string, /^SERVICE +LAYER +STATE +PID +RESTARTS +SINCE +DOMAIN +LEVEL +ERROR$/);
  t.regex(lines[1] as string, /^web\/httpd +web +running +7 +0 +T +mway_web_t +s0:c0,c1$/);
  t.regex(lines[2] as string, /^web\/old +web +stopped +0 +T$/);
});

test('selinuxBrief() gives the mode, the policy and the denials, and nothing for an unknown shape', (t) => {
  const sha256 = 'ab'.repeat(32);
  t.is(
    selinuxBrief({
      selinux: { mode: 'enforcing', policy: { version: 3, format: 33, sha256, layers: 2 }, denials: 4 },
    }),
    'selinux enforcing, policy 3 sha256 abababababababab…, 4 denials',
  );
  t.is(
    selinuxBrief({ selinux: { mode: 'permissive', denials: 12, unseen: 3 } }),
    'selinux permissive, 12 denials (3 unseen)',
  );
  t.is(selinuxBrief({ selinux: { mode: 'off', denials: 0 } }), 'selinux off');
  t.is(selinuxBrief({ selinux: { mode: 7 } }), undefined);
  t.is(selinuxBrief({}), undefined);
  t.is(selinuxBrief(null), undefined);
});
