// agent/: milkyway-agent, PID 1. Re-exports only what other parts use, and only from modules
// that load little else: the image builder fills the agent's compile cache and starts node
// with the agent's flags (imagebuild/agent-compile-cache.ts, imagebuild/coreos-tree.ts), and
// checks an image spec's `agent` keys with the agent config's own schema.
// The agent itself starts from agent/bin/milkyway-agent.ts; see doc/internal-apis.md.

export { AGENT_CODES, type AgentCode } from './core/agent-codes.ts';
export { COMPILE_CACHE_SUBDIR } from './core/compile-cache.ts';
export { AGENT_EXEC_ARGV, agentEnv } from './core/rt-signals.ts';
export { AGENT_TUNING, agentConfigFormat } from './core/agent-config.ts';
export { SECURE_CONFIG_ENTRIES, secureConfigFormat } from './core/trust.ts';
export { buildUserAvcHelper, USER_AVC_HELPER } from './dbus/user-avc-build.ts';
export { buildSandboxExecHelper, SANDBOX_EXEC_HELPER } from './services/sandbox-exec-build.ts';
