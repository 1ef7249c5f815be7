// Child program for secrets.test.ts, run in a private mount namespace (activating a layer
// mounts its payload): boots an agent in-process on ROOT, stores a layer's and a group's
// secrets with putSecrets(), reports the layer's uid/gid, and shuts down.
import { Agent } from '../../../agent/core/agent.ts';
import { readAgentConfig } from '../../../agent/core/agent-config.ts';
import { createAgentLogger } from '../../../agent/core/agent-log.ts';

const [root, configPath] = process.argv.slice(2);
if (root === undefined || configPath === undefined) throw new Error('usage: secrets-child.ts ROOT CONFIG');
const lines: string[] = [];
const agent = new Agent({
  config: await readAgentConfig(configPath, { root }),
  mode: 'namespace',
  logger: createAgentLogger({ kmsg: false, console: (l) => lines.push(l) }),
});
await agent.boot();
const owner = agent.layers.ownerOf('web');
if (owner === undefined) throw new Error(`layer web is not active:\n${lines.join('')}`);
await agent.putSecrets('web', { 'api-key': new TextEncoder().encode('own secret') });
await agent.putSecrets('shop', { 'db-password': new TextEncoder().encode('shared secret') });
const result = await agent.shutdown('poweroff', 'test');
process.stdout.write(`${JSON.stringify({ owner, code: result.code })}\n`);
