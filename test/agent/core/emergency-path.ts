// Child program for emergency.test.ts: a real Agent with the real emergency path, which
// then hits an uncaught exception or an unhandled rejection (argv[3]).
import { Agent } from '../../../agent/core/agent.ts';
import { readAgentConfig } from '../../../agent/core/agent-config.ts';
import { createAgentLogger } from '../../../agent/core/agent-log.ts';
import { finish, installEmergencyPath } from '../../../agent/core/pid1.ts';

const [configPath, root, kind] = process.argv.slice(2);
if (configPath === undefined || root === undefined)
  throw new Error('usage: emergency-path.ts CONFIG ROOT KIND');
const agent = new Agent({
  config: await readAgentConfig(configPath, { root }),
  mode: 'namespace',
  logger: createAgentLogger({ kmsg: false }),
});
installEmergencyPath(agent);
setInterval(() => {}, 1 << 30);
await agent.boot();
setTimeout(() => {
  if (kind === 'rejection') void Promise.reject(new Error('boom (rejection)'));
  else throw new Error('boom (exception)');
}, 50);
await finish(await agent.done, false);
