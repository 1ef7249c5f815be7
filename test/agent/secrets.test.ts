import test from 'ava';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent } from '../../agent/agent.ts';
import { readAgentConfig } from '../../agent/agent-config.ts';
import { createAgentLogger } from '../../agent/agent-log.ts';
import { makePki, makeRoot } from './_namespace.ts';

test("putSecrets() writes a group's secrets atomically, readable by the group only, and refuses unknown names", async (t) => {
  const r = await makeRoot(t, await makePki(t), {
    secure: { v: 1, groups: { shop: { gid: 5000, layers: ['web'] } } },
    config: { cgroupRoot: '/nonexistent/cgroup' },
  });
  const lines: string[] = [];
  const agent = new Agent({
    config: await readAgentConfig(r.configPath, { root: r.root }),
    mode: 'namespace',
    logger: createAgentLogger({ kmsg: false, console: (l) => lines.push(l) }),
  });
  await agent.boot();
  t.true((await agent.status()).secureConfig.verified, lines.join(''));
  await agent.putSecrets('shop', {
    'db-password': new TextEncoder().encode('hunter2'),
    token: new Uint8Array([1, 2]),
  });
  const dir = join(r.root, 'data', 'group', 'shop', 'secrets');
  t.deepEqual((await readdir(dir)).sort(), ['db-password', 'token']);
  t.is(await readFile(join(dir, 'db-password'), 'utf8'), 'hunter2');
  const st = await stat(join(dir, 'db-password'));
  t.is(st.mode & 0o777, 0o640);
  t.is(st.gid, 5000);
  await t.throwsAsync(agent.putSecrets('nosuch', {}), { code: 'E_LAYER_UNKNOWN' } as never);
  await t.throwsAsync(agent.putSecrets('shop', { '../escape': new Uint8Array(1) }), {
    code: 'E_BAD_NAME',
  } as never);
  await t.throwsAsync(agent.putSecrets('shop', { '.hidden': new Uint8Array(1) }), {
    code: 'E_BAD_NAME',
  } as never);
  const result = await agent.shutdown('poweroff', 'test');
  t.is(result.code, 0);
});
