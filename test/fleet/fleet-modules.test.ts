// Modules end to end on the host: two real agents, each PID 1 of its own PID and mount
// namespace, connected to the real broker on 127.0.0.1; p1 holds a user-signed module layer
// `probe`, p2 the same layer with one payload byte flipped. `mway module list|info|run`, the
// module's verb (`mway probe …`), addressing by address and network from the signed facts, and
// every refusal with its code: the scope (a `*` operator and one scoped to another action),
// arguments outside the schema (on the operator, and on the peer when the operator is bypassed),
// a command bound to another manifest, the tampered module, and actions that exceed what they
// declared (no network, no data), run too long, print too much or not JSON. The sandbox is read
// from inside: uid, effective capabilities (/proc/self/status), network interfaces
// (/proc/net/dev) and /dev, with and without the declared privileges.
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { Broker } from '../../control/broker/broker.ts';
import { OperatorClient, readOperatorConfig } from '../../control/operator/operator-client.ts';
import { newIdentity, readCertificates, readPrivateKey, tlsContextOptions } from '../../keys/index.ts';
import { readLayer } from '../../layers/index.ts';
import { packLayer } from '../../layers/pack.ts';
import { makeRoot, startAgent } from '../agent/_namespace.ts';
import { makeFleetPki } from '../control/command-fixture.ts';
import { cli, jsonOut, tempDir, until } from '../helpers.ts';

const pkiP = makeFleetPki();

// Prints what the sandbox looks like from inside, as one JSON object; $1 names the probe.
const PROBE = `read -r args || true
caps=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)
ifaces=$(($(wc -l < /proc/net/dev) - 2))
devs=$(ls /dev | tr '\\n' ' ')
secure=no; touch /data/secure/.probe 2>/dev/null && secure=yes
if [ "$1" = write ]; then echo hi > /data/secure/was-here; fi
printf '{"args":%s,"uid":%s,"caps":"%s","ifaces":%s,"dev":"%s","secure":"%s","action":"%s"}' \\
  "$args" "$(id -u)" "$caps" "$ifaces" "$devs" "$secure" "$MWAY_ACTION"
`;
// What the admin action wrote into the module's private data, read by an action without it.
const LEAK = `set -e
cat /data/secure/was-here
`;
const NETLEAK = `ip link add mwayprobe0 type dummy`;

const sh = (file: string, ...rest: string[]) => ['/bin/sh', `/probe/${file}`, ...rest];

const manifest = {
  name: 'probe',
  version: '1.0.0',
  kind: 'module',
  data: { private: true, common: false, groups: [] },
  verb: { name: 'probe', description: 'Looks at its own sandbox' },
  actions: [
    {
      name: 'show',
      description: 'Nothing declared',
      argv: sh('probe.sh', 'show'),
      args: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: {
          name: { type: 'string', maxLength: 16 },
          count: { type: 'integer', minimum: 1, maximum: 5 },
          tags: { type: 'array', items: { type: 'string' } },
        },
      },
    },
    {
      name: 'admin',
      argv: sh('probe.sh', 'write'),
      privileges: {
        network: 'admin',
        devices: ['/dev/net/tun'],
        data: { private: true },
      },
    },
    { name: 'root', argv: sh('probe.sh', 'root'), privileges: { user: 'root' } },
    { name: 'leak', argv: sh('leak.sh') },
    { name: 'netleak', argv: sh('netleak.sh') },
    { name: 'slow', argv: ['/bin/sleep', '30'], timeoutSec: 1 },
    {
      name: 'chatty',
      argv: ['/bin/sh', '-c', 'head -c 5000 /dev/zero | tr "\\\\0" a'],
      output: { maxBytes: 100 },
    },
    { name: 'notjson', argv: ['/bin/echo', 'hello'] },
    { name: 'needsdev', argv: ['/bin/true'], privileges: { devices: ['/dev/mway-no-such-device'] } },
    {
      name: 'typed',
      argv: ['/bin/echo', '{"ok":"yes"}'],
      output: { schema: { type: 'object', required: ['ok'], properties: { ok: { type: 'boolean' } } } },
    },
  ],
};

async function packProbe(
  dir: string,
  user: { keyPath: string; certPath: string },
  out: string,
  version = '1.0.0',
): Promise<void> {
  const src = join(dir, `probe-src-${version}`);
  await mkdir(join(src, 'rootfs', 'probe'), { recursive: true });
  await writeFile(join(src, 'rootfs', 'probe', 'probe.sh'), PROBE);
  await writeFile(join(src, 'rootfs', 'probe', 'leak.sh'), LEAK);
  await writeFile(join(src, 'rootfs', 'probe', 'netleak.sh'), NETLEAK);
  await writeFile(join(src, 'layer.json'), JSON.stringify({ ...manifest, version }));
  await packLayer({
    dir: src,
    key: await readPrivateKey(user.keyPath),
    chain: await readCertificates(user.certPath),
    out,
    sourceDateEpoch: 1_700_000_000,
  });
}

interface Peer {
  peer: string;
  outcome: string;
  code?: string;
  message?: string;
  output?: {
    module: string;
    version: string;
    action: string;
    exitCode: number;
    result: unknown;
    stderr?: string;
  };
}

test('module actions run only as signed and scoped, in a sandbox with exactly their declared privileges', async (t) => {
  const p = await pkiP;
  const dir = await tempDir(t);
  const broker = await Broker.start({
    dbPath: join(dir, 'broker.sqlite'),
    tls: tlsContextOptions({
      keyPath: p.broker.keyPath,
      certPath: p.broker.certPath,
      anchors: [p.root.cert],
    }),
    certificate: p.broker.cert,
    anchors: [p.root.cert],
  });
  t.teardown(() => broker.close());
  const address = `127.0.0.1:${broker.port}`;
  const under = { issuerKey: p.root.key, issuerCert: p.root.cert };
  const user = await newIdentity({ ...under, role: 'user', name: 'user', outDir: join(dir, 'user') });
  const mwl = join(dir, 'probe.mwl');
  await packProbe(dir, user, mwl);
  // The same layer with one payload byte flipped: its signature still verifies, verity does not.
  const tampered = join(dir, 'tampered.mwl');
  await writeFile(tampered, await readFile(mwl));
  const info = await readLayer(tampered);
  const fh = await open(tampered, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, info.payloadOffset + 10);
  b[0] = (b[0] as number) ^ 0xff;
  await fh.write(b, 0, 1, info.payloadOffset + 10);
  await fh.close();

  const agentPki = { dir, rootCert: p.root.certPath, userKeyPath: user.keyPath, userCertPath: user.certPath };
  const agents = [];
  for (const [id, layer] of [
    [p.p1, mwl],
    [p.p2, tampered],
  ] as const) {
    const r = await makeRoot(t, agentPki, {
      config: {
        control: {
          broker: address,
          fleet: 'prod',
          key: `/base${id.keyPath}`,
          cert: `/base${id.certPath}`,
          kemKey: `/base${id.kemKeyPath}`,
          anchors: ['/certs'],
          maxBackoffMs: 500,
          statusIntervalMs: 1000,
        },
      },
    });
    await writeFile(join(r.root, 'layers', 'probe.mwl'), await readFile(layer));
    const a = startAgent(t, r);
    await a.waitFor(/peer link started/);
    agents.push({ root: r.root, agent: a });
  }
  await until('both agents connected', () => broker.peers.has('p1') && broker.peers.has('p2'));

  // Operators: the fleet's admin (`*`, which never covers a module), one for the whole module,
  // and one for probe.show only.
  const op = async (name: string, actions: string[]) =>
    newIdentity({ ...under, role: 'operator', name, groups: ['*'], actions, outDir: join(dir, name) });
  const modop = await op('modop', ['status', 'module:probe', 'module:nosuch', 'module:greeter']);
  const showop = await op('showop', ['module:probe.show']);
  const base = ['--broker', address, '--fleet', 'prod', '--anchor', p.root.certPath];
  const as = (name: string) => {
    const env = { MWAY_CONFIG_DIR: join(dir, `mway-${name}`) };
    return (...args: string[]) => cli('mway', args, { env, timeout: 60_000 });
  };
  const admin = as('admin');
  const mway = as('modop');
  const show = as('showop');
  for (const [run, id] of [
    [admin, p.admin],
    [mway, modop],
    [show, showop],
  ] as const) {
    t.is((await run('config', 'init', ...base, '--key', id.keyPath, '--cert', id.certPath)).exitCode, 0);
  }

  // The module is known to the fleet from p1's signed status; p2 refused its copy.
  await until('p1 reports the module', async () => {
    const r = await mway('module', 'list', '--json');
    return r.exitCode === 0 && (jsonOut(r.stdout) as unknown[]).length === 1;
  });
  const list = jsonOut((await mway('module', 'list', '--json')).stdout) as Array<{
    name: string;
    peers: string[];
    verb: { name: string };
    manifest: string;
  }>;
  t.deepEqual(
    list.map((m) => [m.name, m.peers, m.verb.name]),
    [['probe', ['p1'], 'probe']],
  );
  t.regex(list[0]?.manifest ?? '', /^[0-9a-f]{64}$/);
  const infoText = await mway('module', 'info', 'probe');
  t.is(infoText.exitCode, 0, infoText.stderr);
  t.regex(infoText.stdout, /needs scope module:probe\.show/);
  t.regex(infoText.stdout, /--arg name=string \(required\)/);
  t.regex(infoText.stdout, /admin[\s\S]*user nobody; network admin; devices \/dev\/net\/tun; data private/);
  const verbs = await mway('module', 'verbs');
  t.regex(verbs.stdout, /^probe {2}probe 1\.0\.0 {2}Looks at its own sandbox$/m);

  // Nothing declared: the layer's own uid, no capability, only lo, no data, no extra device.
  const r1 = await mway(
    'module',
    'run',
    'probe',
    'show',
    '--peer',
    'p1',
    '--arg',
    'name=x',
    '--arg',
    'count=3',
    '--arg',
    'tags=a',
    '--arg',
    'tags=b',
    '--json',
    '--static',
  );
  t.is(r1.exitCode, 0, r1.stdout + r1.stderr);
  const o1 = (jsonOut(r1.stdout) as { peers: Peer[] }).peers[0]?.output;
  const s1 = o1?.result as {
    args: unknown;
    uid: number;
    caps: string;
    ifaces: number;
    dev: string;
    secure: string;
    action: string;
  };
  t.deepEqual(s1.args, { name: 'x', count: 3, tags: ['a', 'b'] }, 'the arguments arrive typed, as signed');
  t.is(s1.action, 'show');
  t.true(s1.uid >= 1000, `runs as the layer's dynamic uid, not ${s1.uid}`);
  t.is(BigInt(`0x${s1.caps}`), 0n, 'no capability at all');
  t.is(s1.ifaces, 1, 'an own network namespace with only lo');
  t.false(s1.dev.split(' ').includes('net'), s1.dev);
  t.is(s1.secure, 'no', 'no data it did not declare (the root is read-only, nothing bound at /data/secure)');
  t.like(o1, { module: 'probe', version: '1.0.0', action: 'show', exitCode: 0 });

  // Declared: CAP_NET_ADMIN (bit 12, ambient for the layer's uid) and nothing else, the host
  // network, /dev/net/tun, its private data — written where the agent keeps the layer's data.
  const r2 = await mway('module', 'run', 'probe', 'admin', '--peer', 'p1', '--json', '--static');
  t.is(r2.exitCode, 0, r2.stdout + r2.stderr);
  const s2 = (jsonOut(r2.stdout) as { peers: Peer[] }).peers[0]?.output?.result as typeof s1;
  t.is(s2.uid, s1.uid);
  t.is(BigInt(`0x${s2.caps}`), 1n << 12n, 'exactly CAP_NET_ADMIN');
  t.true(s2.ifaces > 1, 'the host network');
  t.true(s2.dev.split(' ').includes('net'), s2.dev);
  t.is(s2.secure, 'yes');
  t.is(await readFile(join(agents[0]?.root ?? '', 'data', 'secure', 'probe', 'was-here'), 'utf8'), 'hi\n');

  // user root: uid 0, and still no capability (root without CAP_DAC_OVERRIDE and the rest).
  const r3 = await mway('module', 'run', 'probe', 'root', '--peer', 'p1', '--json', '--static');
  const s3 = (jsonOut(r3.stdout) as { peers: Peer[] }).peers[0]?.output?.result as typeof s1;
  t.is(s3.uid, 0);
  t.is(BigInt(`0x${s3.caps}`), 0n);

  // The verb: `mway probe ACTION` is `mway module run probe ACTION`; by address and network
  // from p1's signed facts (both agents share the host's addresses, so p2 answers too: refused).
  const facts = jsonOut((await mway('facts', '--peer', 'p1', '--json')).stdout) as Array<{
    facts: { addresses: Record<string, string[]> };
  }>;
  const ipv4 = Object.values(facts[0]?.facts.addresses ?? {})
    .flat()
    .find((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a));
  t.truthy(ipv4, 'the host has an IPv4 address to address the peer by');
  const byAddr = await mway(
    'probe',
    'show',
    '--peer',
    ipv4 as string,
    '--arg',
    'name=y',
    '--dry-run',
    '--json',
    '--static',
  );
  t.is(byAddr.exitCode, 0, byAddr.stdout + byAddr.stderr);
  t.deepEqual(
    (jsonOut(byAddr.stdout) as { peers: Peer[] }).peers.map((x) => x.peer),
    ['p1', 'p2'],
  );
  const net = `${(ipv4 as string).split('.').slice(0, 3).join('.')}.0/24`;
  const byNet = await mway('probe', 'show', '--peer', net, '--arg', 'name=y', '--json', '--static');
  const bn = jsonOut(byNet.stdout) as { peers: Peer[] };
  t.deepEqual(
    bn.peers.map((x) => `${x.peer} ${x.outcome} ${x.code ?? ''}`.trim()),
    ['p1 ok', 'p2 failed E_MODULE_REFUSED'],
    'p2 holds a tampered copy: refused at boot, and so here',
  );
  t.regex(bn.peers[1]?.message ?? '', /E_VERITY|verity/i);
  const elsewhere = await mway('probe', 'show', '--peer', '203.0.113.0/24', '--arg', 'name=y');
  t.is(elsewhere.exitCode, 1);
  t.regex(elsewhere.stderr, /E_TARGET_EMPTY/);
  const human = await mway('probe', 'show', '--peer', 'p1', '--arg', 'name=human');
  t.is(human.exitCode, 0, human.stderr);
  t.regex(human.stdout, /p1 +ok +probe 1\.0\.0 show, exit 0, result below/);
  // The output as the peer signed it: RFC 8785 text, so its keys are sorted ("action" before
  // "args"), whatever order the action printed them in.
  t.regex(human.stdout, /== p1 ==\n\{\n {2}"action": "show",\n {2}"args": \{\n {4}"name": "human"/);
  const verbHelp = await mway('probe');
  t.is(verbHelp.exitCode, 0, verbHelp.stderr);
  t.regex(verbHelp.stdout, /^mway probe ACTION/);
  const noVerb = await mway('nosuchverb', 'x', '--peer', 'p1');
  t.is(noVerb.exitCode, 2);
  t.regex(noVerb.stderr, /E_VERB_UNKNOWN/);

  // Refusals, each with its code.
  const code = (r: { stdout: string }) =>
    (jsonOut(r.stdout) as { peers: Peer[] }).peers.map((x) => `${x.outcome} ${x.code}`);
  t.deepEqual(
    code(
      await admin('module', 'run', 'probe', 'show', '--peer', 'p1', '--arg', 'name=x', '--json', '--static'),
    ),
    ['refused E_CMD_SCOPE_ACTION'],
  );
  t.deepEqual(code(await show('module', 'run', 'probe', 'admin', '--peer', 'p1', '--json', '--static')), [
    'refused E_CMD_SCOPE_ACTION',
  ]);
  t.deepEqual(
    code(
      await show('module', 'run', 'probe', 'show', '--peer', 'p1', '--arg', 'name=x', '--json', '--static'),
    ),
    ['ok undefined'],
  );
  // Outside the schema: the operator refuses before signing (exit 2, the argument named) …
  for (const bad of [
    ['--arg', 'count=9'],
    ['--arg', 'nope=1'],
    ['--arg', 'count=two'],
  ]) {
    const r = await mway('module', 'run', 'probe', 'show', '--peer', 'p1', '--arg', 'name=x', ...bad);
    t.is(r.exitCode, 2, r.stderr);
    t.regex(r.stderr, /E_MODULE_ARGS/);
  }
  const missing = await mway('module', 'run', 'probe', 'show', '--peer', 'p1');
  t.regex(missing.stderr, /E_MODULE_ARGS: Arguments of probe\.show: name: missing/);
  // … and the peer refuses what a client sends without that check, or bound to another manifest.
  const c = await OperatorClient.connect(
    await readOperatorConfig(join(dir, 'mway-modop')),
    join(dir, 'mway-modop'),
  );
  t.teardown(() => c.close());
  const direct = async (args: Record<string, unknown>) =>
    (
      await c.run({
        action: 'module.run',
        target: 'peer:p1',
        args: { module: 'probe', action: 'show', ...args },
        timeoutMs: 30_000,
      })
    ).peers[0];
  t.like(await direct({ args: { name: 'a-name-far-too-long' } }), {
    outcome: 'failed',
    code: 'E_MODULE_ARGS',
  });
  t.like(await direct({ args: { name: 'x' }, manifest: '0'.repeat(64) }), {
    outcome: 'failed',
    code: 'E_MODULE_DIGEST',
  });
  t.like(await direct({ args: { name: 'x' }, manifest: list[0]?.manifest }), { outcome: 'ok' });
  t.like(await direct({ action: 'nosuch', args: {} }), {
    outcome: 'failed',
    code: 'E_MODULE_ACTION_UNKNOWN',
  });
  t.like(await direct({ module: 'nosuch', args: {} }), { outcome: 'failed', code: 'E_MODULE_UNKNOWN' });
  const malformed = (await c
    .run({ action: 'module.run', target: 'peer:p1', args: { module: 'probe' }, timeoutMs: 30_000 })
    .catch((e: { code: string }) => e)) as { code: string };
  t.is(malformed.code, 'E_CMD_MALFORMED', 'the operator builds no malformed module.run either');

  // Actions exceeding what they declared fail; so do the bounds.
  const outcome = async (action: string) => {
    const r = await mway('module', 'run', 'probe', action, '--peer', 'p1', '--json', '--static');
    return (jsonOut(r.stdout) as { peers: Peer[] }).peers[0];
  };
  const leak = await outcome('leak');
  t.like(leak, { outcome: 'failed', code: 'E_MODULE_EXIT' });
  t.regex(leak?.output?.stderr ?? '', /\/data\/secure/);
  const netleak = await outcome('netleak');
  t.like(netleak, { outcome: 'failed', code: 'E_MODULE_EXIT' });
  t.regex(netleak?.output?.stderr ?? '', /Operation not permitted/);
  t.like(await outcome('slow'), { outcome: 'failed', code: 'E_MODULE_TIMEOUT' });
  t.like(await outcome('chatty'), { outcome: 'failed', code: 'E_MODULE_OUTPUT_LIMIT' });
  t.like(await outcome('notjson'), { outcome: 'failed', code: 'E_MODULE_OUTPUT' });
  t.like(await outcome('needsdev'), { outcome: 'failed', code: 'E_MODULE_DEVICE' });
  t.like(await outcome('typed'), { outcome: 'failed', code: 'E_MODULE_OUTPUT' });
  // The agent is fine after all that.
  const st = await mway('status', '--peer', 'p1', '--json', '--static');
  t.is(st.exitCode, 0, st.stdout);

  // p2 gets a good probe of another version: one command cannot be bound to both manifests.
  const v11 = join(dir, 'probe-1.1.0.mwl');
  await packProbe(dir, user, v11, '1.1.0');
  const up = await admin('install', '--peer', 'p2', v11, '--json', '--static');
  t.is(up.exitCode, 0, up.stdout + up.stderr);
  await until(
    'both versions reported',
    async () => (jsonOut((await mway('module', 'list', '--json')).stdout) as unknown[]).length === 2,
  );
  const mixed = await mway('probe', 'show', '--peer', 'p1,p2', '--arg', 'name=x');
  t.is(mixed.exitCode, 1);
  t.regex(mixed.stderr, /E_MODULE_VERSIONS: The targets run probe 1\.0\.0 .* and probe 1\.1\.0/);
  const anyVersion = await mway(
    'probe',
    'show',
    '--peer',
    'p1,p2',
    '--arg',
    'name=x',
    '--any-version',
    '--json',
    '--static',
  );
  t.is(anyVersion.exitCode, 0, anyVersion.stdout + anyVersion.stderr);
  t.deepEqual(
    (jsonOut(anyVersion.stdout) as { peers: Peer[] }).peers.map((x) => `${x.peer} ${x.output?.version}`),
    ['p1 1.0.0', 'p2 1.1.0'],
  );
  const onlyNew = await mway('probe', 'show', '--peer', 'p2', '--arg', 'name=x', '--json', '--static');
  t.is(onlyNew.exitCode, 0, onlyNew.stdout + onlyNew.stderr);

  // A module from `mway-layer init --kind module`, packed as it comes and installed at run time:
  // its verb is there once p1's next status reports it.
  const greeter = join(dir, 'greeter');
  t.is((await cli('mway-layer', ['init', 'greeter', greeter, '--kind', 'module'])).exitCode, 0);
  const gmwl = join(dir, 'greeter.mwl');
  const pack = await cli('mway-layer', [
    'pack',
    greeter,
    '--key',
    user.keyPath,
    '--cert',
    user.certPath,
    '-o',
    gmwl,
  ]);
  t.is(pack.exitCode, 0, pack.stderr);
  // What a packager or operator reviews before installing: each action and what it may do.
  const inspect = await cli('mway-layer', ['inspect', gmwl, '--no-files']);
  t.is(inspect.exitCode, 0, inspect.stderr);
  t.regex(inspect.stdout, /^verb: {4}mway greeter$/m);
  t.regex(
    inspect.stdout,
    /^action hello: \/bin\/sh \/greeter\/hello \(user nobody, network none; capabilities none; devices none; data none; timeout 10 s, output ≤ 4096 bytes; scope module:greeter\.hello\)$/m,
  );
  const inspectProbe = await cli('mway-layer', ['inspect', mwl, '--no-files']);
  t.regex(
    inspectProbe.stdout,
    /^action admin: .*network admin; capabilities none; devices \/dev\/net\/tun; data private;/m,
  );
  const install = await admin('install', '--peer', 'p1', gmwl, '--json', '--static');
  t.is(install.exitCode, 0, install.stdout + install.stderr);
  await until('p1 reports greeter', async () =>
    (jsonOut((await mway('module', 'list', '--json')).stdout) as Array<{ name: string }>).some(
      (x) => x.name === 'greeter',
    ),
  );
  const hello = await mway('greeter', 'hello', '--peer', 'p1', '--arg', 'who=Ann Lee', '--json', '--static');
  t.is(hello.exitCode, 0, hello.stdout + hello.stderr);
  t.deepEqual((jsonOut(hello.stdout) as { peers: Peer[] }).peers[0]?.output?.result, {
    hello: 'Ann Lee',
    action: 'hello',
  });
  const quote = await mway('greeter', 'hello', '--peer', 'p1', '--arg', 'who=a"b');
  t.is(quote.exitCode, 2, "the template's pattern keeps quotes out");
  t.regex(quote.stderr, /E_MODULE_ARGS: Arguments of greeter\.hello: who: /);
});
