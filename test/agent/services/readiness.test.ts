// Readiness polling (agent/services/readiness/poll.ts): probes start within milliseconds and back off to a
// ceiling, never polling slower than the ceiling however long a service takes.
import test from 'ava';
import { pollDelay } from '../../../agent/services/readiness/poll.ts';

test('pollDelay() starts at 5 ms, doubles, and stays at the ceiling', (t) => {
  t.deepEqual(
    Array.from({ length: 7 }, (_, i) => pollDelay(i, 50)),
    [5, 10, 20, 40, 50, 50, 50],
  );
  t.is(pollDelay(1_000_000, 100), 100);
});
