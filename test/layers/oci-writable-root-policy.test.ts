// Writable roots under SELinux (an imported image's writableRoot), read back with setools
// (sesearch, seinfo; Debian setools 4.4) from the binary secilc makes for layers a and b: the
// type a run's overlay and upper are mounted with, mway_a_root_t, is written only by a's own
// domain and the agent (the overlay's mounter), never by b; the agent never runs a file of it in
// its own domain; a's payload type stays written by nobody. A module that lets another type
// write it is refused by the new neverallow rules, one that names it from layer b by the
// module check.
import test from 'ava';
import { execa } from 'execa';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compilePolicy, layerObjectContext, layerTypes, POLICY_VERSION } from '../../layers/index.ts';

let built: Promise<string> | undefined;
const dirs: string[] = [];
test.after.always(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function policyFile(): Promise<string> {
  built ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mway-rootpolicy-'));
    dirs.push(dir);
    const p = await compilePolicy([{ name: 'a' }, { name: 'b' }]);
    const file = join(dir, `policy.${POLICY_VERSION}`);
    await writeFile(file, p.policy);
    return file;
  })();
  return built;
}

async function sesearch(policy: string, args: string[]): Promise<string[]> {
  const r = await execa('sesearch', ['-A', ...args, policy], { timeout: 120_000 });
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('allow '));
}

const expanded = new Map<string, Promise<string[]>>();
/** The types a rule's source stands for: itself, or an attribute's members (seinfo -x). */
function typesOf(policy: string, name: string): Promise<string[]> {
  let p = expanded.get(name);
  if (p === undefined) {
    p = (async () => {
      const r = await execa('seinfo', ['-a', name, '-x', policy], { timeout: 120_000, reject: false });
      const members = r.stdout
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => /^[a-z][a-z0-9_.-]*_t$/.test(l));
      return r.exitCode === 0 && /Type Attributes: 1\b/.test(r.stdout) ? members : [name];
    })();
    expanded.set(name, p);
  }
  return p;
}

/** Every type some rule allows `perm` on `target` (class `cls`), attributes expanded. */
async function who(policy: string, target: string, cls: string, perm: string): Promise<string[]> {
  const out = new Set<string>();
  for (const rule of await sesearch(policy, ['-t', target, '-c', cls, '-p', perm])) {
    const source = rule.split(' ')[1] as string;
    for (const t of await typesOf(policy, source)) out.add(t);
  }
  return [...out].sort();
}

const WRITES: [string, string[]][] = [
  ['file', ['write', 'append', 'create', 'unlink', 'rename', 'setattr']],
  ['dir', ['write', 'add_name', 'remove_name', 'create', 'rmdir', 'setattr']],
  ['lnk_file', ['create', 'unlink']],
];

test("sesearch: only layer a's domain and the agent write a's writable root; b reaches none of it", async (t) => {
  t.timeout(15 * 60_000);
  const policy = await policyFile();
  const a = layerTypes('a');
  const b = layerTypes('b');
  t.is(a.root, 'mway_a_root_t');
  for (const [cls, perms] of WRITES) {
    for (const perm of perms)
      t.deepEqual(
        await who(policy, a.root, cls, perm),
        ['milkyway_agent_t', a.domain].sort(),
        `${cls} ${perm}`,
      );
  }
  t.deepEqual(await sesearch(policy, ['-s', b.domain, '-t', a.root]), []);
  // Its own domain runs what it sees there (setpriv and the image's programs come through it).
  t.deepEqual(await who(policy, a.root, 'file', 'entrypoint'), [a.domain]);
  t.deepEqual(await who(policy, a.root, 'file', 'execute_no_trans'), [a.domain]);
  // The agent opens a file of it to exec it only into a's domain, never runs one itself.
  t.true((await who(policy, a.root, 'file', 'execute')).includes('milkyway_agent_t'));
  t.true(
    (await sesearch(policy, ['-s', 'milkyway_agent_t', '-t', a.domain, '-c', 'process', '-p', 'transition']))
      .length > 0,
  );
  // The payload is read-only to every type, the agent included (the writes go to the root type).
  for (const [cls, perms] of WRITES) {
    for (const perm of perms)
      t.deepEqual(await who(policy, a.files, cls, perm), [], `${a.files} ${cls} ${perm}`);
  }
  t.is(layerObjectContext('a', 'root', [4, 9]), 'system_u:object_r:mway_a_root_t:s0:c4,c9');
});

test("compilePolicy() refuses a module that lets a type of its own write the layer's root (neverallow)", async (t) => {
  t.timeout(10 * 60_000);
  const module =
    '(type helper_t)\n(roletype system_r helper_t)\n(allow helper_t mway_a_root_t (file (write)))\n';
  const e = await t.throwsAsync(
    compilePolicy([{ name: 'a', module: new TextEncoder().encode(module) }, { name: 'b' }]),
    {
      code: 'E_POLICY_INVALID',
    },
  );
  t.regex(e?.message ?? '', /neverallow/i);
  // From layer b the name alone is refused, before secilc runs.
  const other = '(allow mway_b_t mway_a_root_t (file (write)))\n';
  const e2 = await t.throwsAsync(
    compilePolicy([{ name: 'a' }, { name: 'b', module: new TextEncoder().encode(other) }]),
    {
      code: 'E_POLICY_INVALID',
    },
  );
  t.regex(e2?.message ?? '', /mway_a_root_t: names another layer's or a group's type/);
  // The same rule for its own domain compiles: the cross-check can fail.
  const own = '(allow mway_a_t mway_a_root_t (file (write)))\n';
  await t.notThrowsAsync(
    compilePolicy([{ name: 'a', module: new TextEncoder().encode(own) }, { name: 'b' }]),
  );
});
