// The readiness conditions of a service, fresh for each run (a notify listener is per run);
// each kind is its own module beside this one.
import type { UnitSpec } from '../unit-spec.ts';
import type { ReadinessCondition } from './condition.ts';
import { execCondition } from './exec-probe.ts';
import { NotifyCondition } from './notify.ts';
import { started } from './started.ts';
import { tcpCondition } from './tcp.ts';

export { type ReadinessCondition, unmet } from './condition.ts';
export { pollDelay } from './poll.ts';

export function conditionsOf(spec: UnitSpec, runDir: string): ReadinessCondition[] {
  const out: ReadinessCondition[] = [
    spec.type === 'notify' ? new NotifyCondition(runDir, spec.name) : started,
  ];
  const r = spec.readiness;
  if (r?.type === 'tcp') out.push(tcpCondition(r.host, r.port));
  if (r?.type === 'exec') out.push(execCondition(spec, r.command, Math.round(r.intervalSec * 1000)));
  return out;
}
