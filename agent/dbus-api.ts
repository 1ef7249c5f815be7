// The part of the AgentApi the D-Bus service serves (structural, so the agent's full
// AgentApi object is passed as is).
export type AgentChange =
  | { kind: 'service'; name: string; state: string }
  | { kind: 'layer'; name: string; event: string };

export interface DbusAgentApi {
  status(): Promise<unknown>;
  listLayers(): Promise<unknown>;
  listServices(): Promise<unknown>;
  getService(name: string): Promise<unknown>;
  startService(name: string): Promise<void>;
  stopService(name: string): Promise<void>;
  restartService(name: string): Promise<void>;
  logs(name: string, options: { lines?: number }): Promise<unknown>;
  installLayer(path: string): Promise<unknown>;
  removeLayer(name: string): Promise<void>;
  /** Subscribes to state changes; returns the unsubscribe function. */
  onChange(listener: (change: AgentChange) => void): () => void;
}
