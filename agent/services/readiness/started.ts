// Readiness `none`: the service counts as running once its sandbox exists (bwrap reported
// its PID 1), not merely once the runner spawned it.
import type { Run } from '../runner.ts';
import { type ReadinessCondition, unlessAborted } from './condition.ts';

export const started: ReadinessCondition = {
  what: 'the sandbox to start',
  wait: (run: Run, signal: AbortSignal) =>
    unlessAborted(
      run.up.then(() => true),
      signal,
      false,
    ),
};
