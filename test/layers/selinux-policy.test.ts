// The MilkyWayLinux policy as the kernel gets it, checked with tools nobody here wrote: setools
// (seinfo, sesearch; Debian setools 4.4) read the binary secilc makes, and the class list is
// compared with the one read out of the shipped kernel's own image (imagebuild/kernel-selinux.ts).
// Two layers and a group are compiled in; no allow rule may reach from one layer's domain to
// the other's private data, secrets or processes, the agent may not read either, and the
// platform's read-only and agent-only types are out of every layer's reach.
import test from 'ava';
import { execa } from 'execa';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compilePolicy, groupType, layerTypes, POLICY_VERSION } from '../../layers/index.ts';
import { readKernelSelinux } from '../../imagebuild/kernel-selinux.ts';
import { DEFAULT_KERNEL_CACHE, fetchKernel } from '../../imagebuild/kernel-package.ts';
import { DEFAULT_SPEC, loadImageSpec } from '../../imagebuild/image-spec.ts';
import { CLASSES_CIL, expectedClassesCil } from '../../scripts/selinux-classes.ts';
import { METHOD_ACCESS } from '../../agent/dbus/dbus-access.ts';
import { checkPolicy } from '../../layers/policy-check.ts';
import { METHODS } from '../../agent/dbus/dbus-names.ts';

const USERSPACE_CLASSES = ['dbus', 'milkyway_agent_api'];

let built: Promise<string> | undefined;
const dirs: string[] = [];
test.after.always(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** A policy with layers a, b, c.d and group g = {a, b}, written to a file (setools read files). */
function policyFile(_t: import('ava').ExecutionContext): Promise<string> {
  built ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mway-sepolicy-'));
    dirs.push(dir);
    const p = await compilePolicy(
      [{ name: 'a' }, { name: 'b' }, { name: 'c.d' }],
      [{ name: 'g', layers: ['a', 'b'] }],
    );
    const file = join(dir, `policy.${POLICY_VERSION}`);
    await writeFile(file, p.policy);
    return file;
  })();
  return built;
}

async function sesearch(policy: string, args: string[]): Promise<string[]> {
  const r = await execa('sesearch', [...args, policy], { timeout: 120_000 });
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('allow ') || l.startsWith('type_transition '));
}

async function kernel() {
  const spec = await loadImageSpec(DEFAULT_SPEC);
  const k = await fetchKernel({
    ...('deb' in spec.kernel ? { deb: spec.kernel.deb } : { package: spec.kernel.package }),
    cacheDir: DEFAULT_KERNEL_CACHE,
  });
  return readKernelSelinux(k.vmlinuz);
}

test('layers/selinux/kernel-classes.cil is what the shipped kernel has (npm run selinux:classes)', async (t) => {
  t.timeout(10 * 60_000);
  t.is(await readFile(CLASSES_CIL, 'utf8'), await expectedClassesCil());
});

test("seinfo: the policy's classes are the kernel's, permission for permission, plus the userspace ones", async (t) => {
  t.timeout(10 * 60_000);
  const [policy, k] = await Promise.all([policyFile(t), kernel()]);
  const stats = (await execa('seinfo', [policy], { timeout: 60_000 })).stdout;
  t.regex(stats, new RegExp(`Classes:\\s+${k.classes.length + USERSPACE_CLASSES.length}\\b`));
  t.regex(stats, /Handle unknown classes:\s+deny/);
  t.regex(stats, /Policy Version:\s+33 \(MLS enabled\)/);
  t.regex(stats, /Categories:\s+1024\b/);
  // seinfo -x -c lists each class with its permissions (its common's under "Inherits").
  const out = (await execa('seinfo', [policy, '-x', '-c'], { timeout: 60_000 })).stdout;
  const classes = new Map<string, Set<string>>();
  let current: Set<string> | undefined;
  for (const line of out.split('\n')) {
    const head = /^\s+class (\S+)$/.exec(line);
    if (head?.[1] !== undefined) {
      current = new Set();
      classes.set(head[1], current);
    } else if (current !== undefined && /^\s+[a-z_0-9]+$/.test(line)) current.add(line.trim());
  }
  t.is(classes.size, k.classes.length + USERSPACE_CLASSES.length);
  for (const c of k.classes)
    t.deepEqual([...(classes.get(c.name) ?? [])].sort(), [...c.perms].sort(), c.name);
  for (const c of USERSPACE_CLASSES) t.true(classes.has(c), c);
  // The capabilities the base turns on are all the kernel's.
  const caps = (await execa('seinfo', [policy, '--polcap'], { timeout: 60_000 })).stdout;
  for (const cap of caps
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^[a-z_]+$/.test(l)))
    t.true(k.policycaps.includes(cap), cap);
});

test("sesearch: no allow rule from one layer to another layer's data, secrets or processes", async (t) => {
  t.timeout(10 * 60_000);
  const policy = await policyFile(t);
  const names = ['a', 'b', 'c.d'];
  for (const from of names) {
    for (const to of names) {
      if (from === to) continue;
      const s = layerTypes(from).domain;
      const o = layerTypes(to);
      for (const target of [o.data, o.secret])
        t.deepEqual(await sesearch(policy, ['-A', '-s', s, '-t', target]), [], `${s} → ${target}`);
      t.deepEqual(
        await sesearch(policy, ['-A', '-s', s, '-t', o.domain, '-c', 'process']),
        [],
        `${s} → ${o.domain}`,
      );
    }
  }
  // The owner may; the cross-check can fail.
  t.true(
    (await sesearch(policy, ['-A', '-s', 'mway_a_t', '-t', 'mway_a_data_t', '-c', 'file', '-p', 'read']))
      .length > 0,
  );
});

test("sesearch: only the owner reads a layer's files of data; the agent makes the folder, nothing more", async (t) => {
  t.timeout(10 * 60_000);
  const policy = await policyFile(t);
  for (const perm of ['read', 'write', 'open', 'append']) {
    const rules = await sesearch(policy, ['-A', '-t', 'mway_a_data_t', '-c', 'file', '-p', perm]);
    t.deepEqual(
      rules.map((r) => r.split(' ')[1]),
      ['mway_a_t'],
      `file ${perm}: ${rules.join(' | ')}`,
    );
  }
  const dirRead = await sesearch(policy, ['-A', '-t', 'mway_a_data_t', '-c', 'dir', '-p', 'read']);
  t.deepEqual(
    dirRead.map((r) => r.split(' ')[1]),
    ['mway_a_t'],
  );
  // What the agent has on private data (through the attribute): the folder's metadata and label.
  const agent = await sesearch(policy, ['-A', '-s', 'milkyway_agent_t', '-t', 'mway_a_data_t']);
  t.true(agent.length > 0);
  for (const r of agent) t.notRegex(r, /[{ ](read|open|unlink|rmdir|remove_name)[ }]/, r);
});

test("sesearch: a layer reaches neither the agent's data nor agent-only partitions, and writes no read-only file", async (t) => {
  t.timeout(10 * 60_000);
  const policy = await policyFile(t);
  const s = layerTypes('a').domain;
  for (const target of [
    'milkyway_agent_data_t',
    'milkyway_config_t',
    'milkyway_layer_store_t',
    'milkyway_identity_t',
    'milkyway_default_file_t',
    'security_t',
  ])
    t.deepEqual(await sesearch(policy, ['-A', '-s', s, '-t', target]), [], target);
  for (const target of ['milkyway_certs_t', 'milkyway_coreos_file_t', 'mway_b_file_t', 'mway_a_file_t'])
    for (const perm of ['write', 'append', 'create', 'setattr', 'relabelto', 'unlink'])
      t.deepEqual(await sesearch(policy, ['-A', '-s', s, '-t', target, '-p', perm]), [], `${target} ${perm}`);
  t.deepEqual(
    await sesearch(policy, ['-A', '-s', s, '-t', 'milkyway_agent_t', '-c', 'process', '-p', 'ptrace']),
    [],
  );
  t.deepEqual(
    await sesearch(policy, ['-A', '-s', s, '-t', 'milkyway_agent_t', '-c', 'process', '-p', 'signal']),
    [],
  );
  t.deepEqual(await sesearch(policy, ['-A', '-s', s, '-c', 'milkyway_agent_api', '-p', 'control']), []);
  t.true((await sesearch(policy, ['-A', '-s', s, '-c', 'milkyway_agent_api', '-p', 'read'])).length > 0);
});

test("sesearch: all a layer may do to the agent's domain — its stdio, the notify socket, the local API's read methods", async (t) => {
  t.timeout(10 * 60_000);
  const policy = await policyFile(t);
  const rules = await sesearch(policy, ['-A', '-s', layerTypes('a').domain, '-t', 'milkyway_agent_t']);
  t.deepEqual(rules.sort(), [
    // The local API: connect to the bus, send to the agent, its read methods (never control).
    'allow milkyway_layer_domain milkyway_agent_t:dbus send_msg;',
    // What the agent hands a service: stdio descriptors, the exit status to bwrap's PID 1.
    'allow milkyway_layer_domain milkyway_agent_t:fd use;',
    'allow milkyway_layer_domain milkyway_agent_t:fifo_file { append getattr ioctl write };',
    'allow milkyway_layer_domain milkyway_agent_t:milkyway_agent_api read;',
    'allow milkyway_layer_domain milkyway_agent_t:process sigchld;',
    // sd_notify on the agent's datagram socket.
    'allow milkyway_layer_domain milkyway_agent_t:unix_dgram_socket sendto;',
    // Node's stdio socketpairs: libuv's getsockname (getattr) and getsockopt SO_TYPE (getopt)
    // at start, read and write; connectto is the API's. No setopt, shutdown, accept or listen.
    'allow milkyway_layer_domain milkyway_agent_t:unix_stream_socket { append connectto getattr getopt ioctl read write };',
  ]);
});

test('sesearch: every method of org.milkyway.Agent1 — a layer may call the read ones on the agent and its own services, never a control one; the agent all', async (t) => {
  t.timeout(10 * 60_000);
  const policy = await policyFile(t);
  // The local API's methods map onto milkyway_agent_api as the agent checks them
  // (agent/dbus/dbus-access.ts): read for the read methods, control for the rest (the same split
  // the bus policy file and the agent's uid check make), on the agent or on the layer whose
  // service a method names. sesearch -t matches a rule written with `self` too.
  const allowed = async (source: string, perm: string, target = 'milkyway_agent_t'): Promise<boolean> =>
    (await sesearch(policy, ['-A', '-s', source, '-t', target, '-c', 'milkyway_agent_api', '-p', perm]))
      .length > 0;
  const methods = Object.entries(METHODS);
  t.deepEqual(
    methods.filter(([, m]) => !m.control).map(([n]) => n),
    ['GetStatus', 'ListLayers', 'ListServices', 'GetService', 'GetLogs'],
  );
  for (const [name, m] of methods)
    t.is(METHOD_ACCESS[name as keyof typeof METHODS].perm === 'control', m.control, name);
  for (const layer of ['a', 'b', 'c.d']) {
    const s = layerTypes(layer).domain;
    for (const [name, m] of methods) {
      const { perm, target } = METHOD_ACCESS[name as keyof typeof METHODS];
      if (target === 'agent') t.is(await allowed(s, perm), !m.control, `${s} ${name} (${perm})`);
      else {
        // Its own services' details and logs; another layer's services not at all.
        t.is(await allowed(s, perm, s), !m.control, `${s} ${name} (${perm}) on its own layer`);
        for (const other of ['a', 'b', 'c.d'].filter((o) => o !== layer))
          t.false(await allowed(s, perm, layerTypes(other).domain), `${s} ${name} on ${other}`);
      }
    }
    // dbus-daemon's own check: a layer may send to the agent's connection, never own a name.
    t.true(
      (await sesearch(policy, ['-A', '-s', s, '-t', 'milkyway_agent_t', '-c', 'dbus', '-p', 'send_msg']))
        .length > 0,
    );
    t.deepEqual(await sesearch(policy, ['-A', '-s', s, '-c', 'dbus', '-p', 'acquire_svc']), [], s);
  }
  for (const [name, m] of methods) {
    const { perm, target } = METHOD_ACCESS[name as keyof typeof METHODS];
    t.true(await allowed('milkyway_agent_t', perm), `milkyway_agent_t ${name}`);
    // The agent's own callers (ctl) reach every layer's services.
    if (target === 'service')
      t.true(
        await allowed('milkyway_agent_t', perm, layerTypes('a').domain),
        `milkyway_agent_t ${name} on a's services`,
      );
    t.is(perm, m.control ? 'control' : 'read');
  }
  // No layer domain is granted control through any other rule either (the neverallow's reach).
  t.deepEqual((await sesearch(policy, ['-A', '-c', 'milkyway_agent_api', '-p', 'control'])).sort(), [
    'allow milkyway_agent_t milkyway_agent_t:milkyway_agent_api { control read };',
    'allow milkyway_agent_t milkyway_layer_domain:milkyway_agent_api { control read };',
  ]);
});

test('a layer module may give its own domain the local API on itself, never control of the agent nor any permission on another layer', async (t) => {
  const check = (rule: string) =>
    checkPolicy(new TextEncoder().encode(`${rule}\n`), 'hello/policy.cil', 'hello');
  // Restarting its own services: a rule about its own types.
  await t.notThrowsAsync(check('(allow mway_hello_t self (milkyway_agent_api (control)))'));
  await t.throwsAsync(check('(allow mway_hello_t milkyway_agent_t (milkyway_agent_api (control)))'), {
    message: /neverallow check failed at constraints\.cil:\d+/,
  });
  // Every layer's services (the attribute holds the placeholder second layer's domain).
  await t.throwsAsync(check('(allow mway_hello_t milkyway_layer_domain (milkyway_agent_api (read)))'), {
    message: /neverallow check failed at layers\.cil:\d+/,
  });
});

test("sesearch: a group's data is its members' (a, b), not c's", async (t) => {
  t.timeout(10 * 60_000);
  const policy = await policyFile(t);
  const g = groupType('g');
  for (const member of ['a', 'b'])
    t.true(
      (await sesearch(policy, ['-A', '-s', layerTypes(member).domain, '-t', g, '-c', 'file', '-p', 'write']))
        .length > 0,
    );
  t.deepEqual(await sesearch(policy, ['-A', '-s', layerTypes('c.d').domain, '-t', g]), []);
});

test('compilePolicy() names the layer whose module breaks a neverallow, and its line', async (t) => {
  const module = new TextEncoder().encode(
    '(type x_t)\n(allow mway_b_t milkyway_agent_data_t (file (read)))\n',
  );
  const e = await t.throwsAsync(compilePolicy([{ name: 'a' }, { name: 'b', module }]), {
    code: 'E_POLICY_INVALID',
  });
  t.like((e as { details?: unknown }).details, { layer: 'b', line: 2 });
  t.regex(e?.message ?? '', /^b\/policy\.cil:2: .*neverallow/);
});
