import test from 'ava';
import { availableParallelism } from 'node:os';
import { sampleCpuIdle } from '../../common/index.ts';

test('sampleCpuIdle() reports idle processors between 0 and the core count, or undefined for a too-short window', async (t) => {
  const s = sampleCpuIdle();
  t.is(s.idleCores(), undefined, 'no ticks have passed yet');
  // Busy this thread for ~0.7 s: at least 50 ticks pass on any machine with 1+ cores.
  const end = performance.now() + 700;
  while (performance.now() < end) Math.sqrt(Math.random());
  const idle = s.idleCores();
  t.not(idle, undefined);
  t.true((idle ?? -1) >= 0 && (idle ?? 99) <= availableParallelism() + 0.01, String(idle));
  // This thread was busy the whole window, so at most cores - 1 (plus rounding) were idle.
  t.true((idle ?? 99) <= availableParallelism() - 0.8, String(idle));
});
