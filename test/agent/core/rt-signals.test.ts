// The re-executed agent's settings (agent/core/rt-signals.ts): its environment fixes glibc's mmap
// threshold and names the compile cache, keeping what the caller chose, and a started agent
// really runs with them.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { COMPILE_CACHE_DIR } from '../../../agent/core/compile-cache.ts';
import { AGENT_V8_FLAGS, agentEnv } from '../../../agent/core/rt-signals.ts';
import { makePki, makeRoot, startAgent } from '../_namespace.ts';

test('agentEnv() fixes the mmap threshold at 128 KiB and adds the compile cache', (t) => {
  const env = agentEnv({ PATH: '/bin' });
  t.is(env.MALLOC_MMAP_THRESHOLD_, '131072');
  t.is(env.NODE_COMPILE_CACHE, COMPILE_CACHE_DIR);
  t.is(env.PATH, '/bin');
});

test('agentEnv() keeps a threshold the caller set', (t) => {
  t.is(agentEnv({ MALLOC_MMAP_THRESHOLD_: '65536' }).MALLOC_MMAP_THRESHOLD_, '65536');
});

test('the running agent has re-executed itself with those flags and that environment', async (t) => {
  const a = startAgent(t, await makeRoot(t, await makePki(t)));
  await a.waitFor(/boot done: 0 services/);
  const pid = await a.hostPid();
  const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
  for (const flag of ['--expose-internals', ...AGENT_V8_FLAGS]) t.true(argv.includes(flag), flag);
  const env = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');
  // What this test's own environment (a developer may set either) makes of it.
  const want = agentEnv(process.env);
  t.true(env.includes(`MALLOC_MMAP_THRESHOLD_=${want.MALLOC_MMAP_THRESHOLD_}`));
  if (want.NODE_COMPILE_CACHE !== undefined)
    t.true(env.includes(`NODE_COMPILE_CACHE=${want.NODE_COMPILE_CACHE}`));
  await a.kill('SIGTERM');
  t.is(await a.exit, 0);
});
