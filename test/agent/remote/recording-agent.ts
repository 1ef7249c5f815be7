// A recording AgentApi for tests of the control side (executor, peer link, hostile broker):
// it answers like an agent with one layer `hello` and records every state-changing call.
// The real agent is driven in test/fleet/fleet-*.test.ts.
import { readFile } from 'node:fs/promises';
import type { AgentApi, LayerInfo } from '../../../agent/core/agent-api.ts';
import { AgentError } from '../../../agent/core/agent-error.ts';

export interface Recorder {
  api: AgentApi;
  calls: string[];
  secrets: Record<string, Record<string, string>>;
  installed: Buffer[];
}

export function recorder(): Recorder {
  const calls: string[] = [];
  const secrets: Record<string, Record<string, string>> = {};
  const installed: Buffer[] = [];
  const layer: LayerInfo = {
    name: 'hello',
    version: '1.0.0',
    kind: 'app',
    state: 'active',
    verity: 'userspace',
    signers: ['user'],
    services: ['hello'],
  };
  const service = (name: string) => ({
    name,
    layer: 'hello',
    state: 'running' as const,
    restarts: 0,
    since: new Date().toISOString(),
    limitsNotApplied: [],
  });
  const api: AgentApi = {
    status: async () => ({
      state: 'running',
      mode: 'namespace',
      bootedAt: new Date().toISOString(),
      secureConfig: { verified: true },
      crls: { count: 0, source: 'partition', problems: [] },
      layers: { active: 1, refused: 0 },
      services: { total: 1, running: 1, failed: 0, problems: [] },
      selinux: { mode: 'off', denials: 0 },
      warnings: [],
    }),
    listLayers: async () => [layer],
    listServices: async () => [service('hello')],
    getService: async (n) => service(n),
    startService: async (n) => void calls.push(`start ${n}`),
    stopService: async (n) => void calls.push(`stop ${n}`),
    restartService: async (n) => void calls.push(`restart ${n}`),
    setServiceEnabled: async (n, enabled) => {
      calls.push(`${enabled ? 'enable' : 'disable'} ${n}`);
      return { enabled, changed: true };
    },
    logs: async () => [],
    installLayer: async (p) => {
      calls.push('install');
      installed.push(await readFile(p));
      return layer;
    },
    updateCoreos: async (p) => {
      calls.push('update');
      installed.push(await readFile(p));
      return { slot: 'b', version: '2.0' };
    },
    checkCoreosBundleHead: async () => void calls.push('check head'),
    rollbackCoreos: async () => {
      calls.push('rollback');
      return { from: 'b', to: 'a' };
    },
    cancelCoreosUpdate: async () => {
      calls.push('cancel update');
      return { slot: 'b', change: 'changed' };
    },
    removeLayer: async (n) => void calls.push(`remove ${n}`),
    // This agent has no module layer: the real agent's answer for an unknown module.
    runModule: async (r) => {
      calls.push(`module ${r.module}.${r.action}`);
      throw new AgentError('E_MODULE_UNKNOWN', `No active module ${r.module} on this peer`);
    },
    putSecrets: async (target, values) => {
      calls.push(`secrets ${target}`);
      secrets[target] = Object.fromEntries(
        Object.entries(values).map(([k, v]) => [k, Buffer.from(v).toString()]),
      );
    },
    reboot: async () => void calls.push('reboot'),
    poweroff: async () => void calls.push('poweroff'),
    onChange: () => () => {},
  };
  return { api, calls, secrets, installed };
}
