// The part of the AgentApi the D-Bus service serves (a Pick, so the agent's full
// AgentApi object is passed as is).
import type { AgentApi } from '../core/agent-api.ts';

export type { AgentChange } from '../core/agent-api.ts';

export type DbusAgentApi = Pick<
  AgentApi,
  | 'status'
  | 'listLayers'
  | 'listServices'
  | 'getService'
  | 'startService'
  | 'stopService'
  | 'restartService'
  | 'logs'
  | 'installLayer'
  | 'removeLayer'
  | 'onChange'
>;
