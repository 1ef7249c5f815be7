import test from 'ava';
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
