import test from 'ava';
import { execa } from 'execa';
import { chmod, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent } from '../../../agent/core/agent.ts';
import { readAgentConfig } from '../../../agent/core/agent-config.ts';
import { createAgentLogger } from '../../../agent/core/agent-log.ts';
import { ROOT } from '../../helpers.ts';
import { buildTestLayer } from '../_layers.ts';
import { makePki, makeRoot } from '../_namespace.ts';

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

/** `cat path` as uid/gid with no supplementary groups and no capabilities (util-linux setpriv). */
async function readAs(uid: number, gid: number, path: string): Promise<boolean> {
  const r = await execa('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', 'cat', path], {
    reject: false,
    timeout: 10_000,
  });
  return r.exitCode === 0;
}

test("putSecrets() keeps a layer's secrets 0600 as the layer's uid in a 0700 directory, and a group's 0640 root:gid in a 0750 one", async (t) => {
  const pki = await makePki(t);
  const r = await makeRoot(t, pki, {
    secure: { v: 1, groups: { shop: { gid: 5000, layers: ['web'] } } },
    config: { cgroupRoot: '/nonexistent/cgroup' },
  });
  await buildTestLayer(
    pki,
    { name: 'web', kind: 'app', data: { private: true, groups: ['shop'] } },
    join(r.root, 'layers', 'web.mwl'),
  );
  const child = await execa(
    'unshare',
    [
      '--mount',
      '--propagation',
      'private',
      process.execPath,
      join(ROOT, 'test/agent/core/secrets-child.ts'),
      r.root,
      r.configPath,
    ],
    { reject: false, timeout: 120_000 },
  );
  t.is(child.exitCode, 0, child.stderr);
  const { owner, code } = JSON.parse(child.stdout) as { owner: { uid: number; gid: number }; code: number };
  t.is(code, 0);
  // The uid is the one the agent recorded for the layer (systemd's dynamic-user range), not root.
  const uids = JSON.parse(await readFile(join(r.root, 'data', 'uids.json'), 'utf8')) as unknown;
  t.true(JSON.stringify(uids).includes(String(owner.uid)));
  t.true(owner.uid >= 61184 && owner.uid <= 65519);

  const own = join(r.root, 'data', 'secure', 'web', 'secrets');
  const ownDir = await stat(own);
  t.is(ownDir.mode & 0o7777, 0o700);
  t.deepEqual([ownDir.uid, ownDir.gid], [owner.uid, owner.gid]);
  const ownFile = await stat(join(own, 'api-key'));
  t.is(ownFile.mode & 0o7777, 0o600);
  t.deepEqual([ownFile.uid, ownFile.gid], [owner.uid, owner.gid]);
  t.is(await readFile(join(own, 'api-key'), 'utf8'), 'own secret');

  const shared = join(r.root, 'data', 'group', 'shop', 'secrets');
  const sharedDir = await stat(shared);
  t.is(sharedDir.mode & 0o7777, 0o750);
  t.deepEqual([sharedDir.uid, sharedDir.gid], [0, 5000]);
  const sharedFile = await stat(join(shared, 'db-password'));
  t.is(sharedFile.mode & 0o7777, 0o640);
  t.deepEqual([sharedFile.uid, sharedFile.gid], [0, 5000]);
  t.deepEqual(
    (await readdir(shared)).filter((f) => f.startsWith('.')),
    [],
    'no temporary file left behind',
  );

  // What the modes mean for a process without root's capabilities: the layer's uid reads its
  // own secret, any other uid does not; a member of the group reads the group's, others do not.
  // (The test's root is a 0700 temp directory: let everyone through it, as / is on a machine.)
  await chmod(r.root, 0o711);
  t.true(await readAs(owner.uid, owner.gid, join(own, 'api-key')));
  t.false(await readAs(owner.uid + 1, owner.gid, join(own, 'api-key')));
  t.true(await readAs(owner.uid + 1, 5000, join(shared, 'db-password')));
  t.false(await readAs(owner.uid + 1, owner.gid + 1, join(shared, 'db-password')));
});
