// The readiness conditions of a service, fresh for each run (a notify listener is per run);
// each kind is its own module beside this one.
import type { ServiceSpec } from '../service-spec.ts';
import type { ReadinessCondition } from './condition.ts';
import { execCondition } from './exec-probe.ts';
import { NotifyCondition } from './notify.ts';
import { started } from './started.ts';
import { tcpCondition } from './tcp.ts';

export { allReady, type ReadinessCondition } from './condition.ts';
export { pollDelay } from './poll.ts';

export function conditionsOf(spec: ServiceSpec, runDir: string): ReadinessCondition[] {
  const r = spec.readiness;
  switch (r.type) {
    case 'none':
      return [started];
    case 'notify':
      return [new NotifyCondition(runDir, spec.name)];
    case 'tcp':
      return [tcpCondition(r.host ?? '127.0.0.1', r.port)];
    case 'exec':
      return [execCondition(spec, r.command)];
  }
}
