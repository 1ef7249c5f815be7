// Maps the agent's change events to the D-Bus signals ServiceChanged(name, state) and
// LayerChanged(name, event).
import type { AgentChange } from './dbus-api.ts';

export interface SignalOut {
  member: 'ServiceChanged' | 'LayerChanged';
  body: [string, string];
}

export function agentChangeSignal(change: AgentChange): SignalOut | undefined {
  if (change.kind === 'service') return { member: 'ServiceChanged', body: [change.name, change.state] };
  if (change.kind === 'layer') return { member: 'LayerChanged', body: [change.name, change.event] };
  return undefined;
}
