// imagebuild/agent-compile-cache.ts: the CoreOS tree carries the agent's compile cache, Node
// itself (the tree's own node, the tree as `/`, the agent's flags) finds every stripped
// module in it, and two fills are byte-identical.
import test from 'ava';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { run } from '../../common/exec.ts';
import { COMPILE_CACHE_DIR } from '../../agent/core/compile-cache.ts';
import { AGENT_EXEC_ARGV } from '../../agent/core/rt-signals.ts';
import {
  COREOS_COMPILE_CACHE,
  fillAgentCompileCache,
  strippedTypeScriptKey,
} from '../../imagebuild/agent-compile-cache.ts';
import { buildCoreosTree } from '../../imagebuild/coreos-tree.ts';
import { COREOS_PATHS, coreosAgentConfig } from '../../imagebuild/coreos-paths.ts';
import { DEFAULT_SPEC, loadImageSpec } from '../../imagebuild/image-spec.ts';

const REPO = join(import.meta.dirname, '..', '..');

let tree = '';
test.before(async () => {
  tree = await mkdtemp(join(tmpdir(), 'mway-cc-'));
  const spec = await loadImageSpec(DEFAULT_SPEC);
  await buildCoreosTree(tree, spec, coreosAgentConfig({ peerIdentity: false, extra: spec.agent }));
});
test.after.always(async () => {
  if (tree !== '') await rm(tree, { recursive: true, force: true });
});

async function snapshot(): Promise<Map<string, string>> {
  const dir = join(tree, COREOS_COMPILE_CACHE);
  const out = new Map<string, string>();
  for (const tag of await readdir(dir))
    for (const f of await readdir(join(dir, tag)))
      out.set(`${tag}/${f}`, (await readFile(join(dir, tag, f))).toString('base64'));
  return out;
}

test.serial('the CoreOS cache sits where the agent looks for it, relative to its code', (t) => {
  t.is(COREOS_COMPILE_CACHE, join(COREOS_PATHS.lib, relative(REPO, COMPILE_CACHE_DIR)));
});

test.serial('strippedTypeScriptKey() matches the file name Node 24 gave a module on this host', async (t) => {
  const cache = await mkdtemp(join(tmpdir(), 'mway-cc-host-'));
  try {
    const file = join(REPO, 'common', 'path-exists.ts');
    await run(process.execPath, ['--eval', `await import(${JSON.stringify(file)})`, '--input-type=module'], {
      timeout: 60_000,
      env: { NODE_COMPILE_CACHE: cache },
    });
    const [tag] = await readdir(cache);
    t.truthy(tag);
    t.true((await readdir(join(cache, tag ?? ''))).includes(strippedTypeScriptKey(file)));
  } finally {
    await rm(cache, { recursive: true, force: true });
  }
});

// The modules a boot loads (agent/cli/run.ts and its lazy imports), imported by the tree's node.
const BOOT_MODULES = [
  'agent/bin/milkyway-agent.ts',
  'agent/cli/run.ts',
  'agent/core/agent.ts',
  'agent/core/pid1.ts',
];
const PROBE = `for (const m of ${JSON.stringify(BOOT_MODULES)}) await import('${COREOS_PATHS.lib}/' + m);
console.log(JSON.stringify(process.moduleLoadList.filter((m) => m.includes('amaro'))));`;

async function probe(env: Record<string, string>): Promise<{ stdout: string; stderr: string }> {
  const args = ['--unshare-user', '--uid', '0', '--gid', '0', '--unshare-net', '--ro-bind', tree, '/'];
  args.push('--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp', '--clearenv');
  for (const [k, v] of Object.entries(env)) args.push('--setenv', k, v);
  args.push('--', COREOS_PATHS.node, ...AGENT_EXEC_ARGV, '--input-type=module', '--eval', PROBE);
  return run('bwrap', args, { timeout: 120_000, extendEnv: false });
}

test.serial(
  "the tree's node, as CoreOS runs the agent, reads every stripped module from the cache",
  async (t) => {
    const r = await probe({ NODE_COMPILE_CACHE: COREOS_COMPILE_CACHE, NODE_DEBUG_NATIVE: 'COMPILE_CACHE' });
    const reads = r.stderr.split('\n').filter((l) => /reading cache from .* for StrippedTypeScript /.test(l));
    t.true(reads.length >= BOOT_MODULES.length, r.stderr.slice(0, 2000));
    t.deepEqual(
      reads.filter((l) => !/success/.test(l)),
      [],
    );
    t.true(reads.some((l) => l.includes(COREOS_PATHS.agentEntry)));
    // Node's type stripper (amaro, WebAssembly) is never loaded; without the cache it is.
    t.deepEqual(JSON.parse(r.stdout), []);
    const cold = await probe({ NODE_DISABLE_COMPILE_CACHE: '1' });
    t.deepEqual(JSON.parse(cold.stdout), ['NativeModule internal/deps/amaro/dist/index']);
  },
);

test.serial(
  '/sbin/init starts node with the agent flags and the cache, so the agent does not re-exec',
  async (t) => {
    const init = await readFile(join(tree, COREOS_PATHS.init), 'utf8');
    t.true(init.includes(`export NODE_COMPILE_CACHE=${COREOS_COMPILE_CACHE}`));
    t.true(init.includes(`${COREOS_PATHS.node} ${AGENT_EXEC_ARGV.join(' ')} ${COREOS_PATHS.agentEntry}`));
  },
);

test.serial('two fills of the same tree are byte-identical and hold only stripped TypeScript', async (t) => {
  const first = await snapshot();
  const { entries } = await fillAgentCompileCache(tree);
  const second = await snapshot();
  t.is(first.size, entries);
  t.deepEqual([...second.keys()].sort(), [...first.keys()].sort());
  for (const [k, v] of first) t.is(second.get(k), v, k);
  // A stripped entry holds JavaScript text after Node's 20-byte header; no V8 code cache.
  for (const v of first.values())
    t.notThrows(() =>
      new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(v, 'base64').subarray(20)),
    );
});
