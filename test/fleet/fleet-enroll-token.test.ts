// Enrollment tokens: an operator signs a single-use token (`mway peers token create`), a new
// machine presents it in its enrollment request, and `mway peers autosign --watch` accepts it
// with the token's groups and labels without a manual step; a second machine with the same
// token is refused (E_ENROLL_TOKEN_USED), one with an expired token too (E_ENROLL_TOKEN_EXPIRED),
// one without a token waits for `mway peers accept`. An operator without the `enroll` scope
// cannot sign one. jq (nobody here wrote it) reads the token file.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { startPeerLink } from '../../agent/remote/peer-link.ts';
import { readCertificates } from '../../keys/index.ts';
import { recorder } from '../agent/remote/recording-agent.ts';
import { makeFleetPki } from '../control/command-fixture.ts';
import { BINS, jsonOut, until } from '../helpers.ts';
import { type Fleet, startFleet } from './_fleet.ts';

const pkiP = makeFleetPki();

/** A machine with no identity that enrolls as `name`, presenting `token` when given. */
function machine(t: ExecutionContext, f: Fleet, rootCert: string, name: string, token?: string) {
  const logs: string[] = [];
  return startPeerLink({
    api: recorder().api,
    stateDir: join(f.dir, name, 'data'),
    log: (level, m) => void logs.push(`${level} ${m}`),
    config: {
      broker: f.address,
      fleet: 'prod',
      anchors: [rootCert],
      enroll: {
        dir: join(f.dir, name, 'identity'),
        peerId: name,
        pollMs: 200,
        ...(token === undefined ? {} : { token }),
      },
      maxBackoffMs: 300,
    },
  }).then((link) => {
    t.teardown(() => link.stop());
    return { link, logs };
  });
}

test('an enrollment token lets a machine in without a manual step, once, until it expires', async (t) => {
  const p = await pkiP;
  const f = await startFleet(t, p);
  const admin = await f.as(p.admin, 'admin');
  const op = await f.as(p.op, 'op'); // scope: group web, actions status/service/group
  t.is((await admin('group', 'create', 'web')).exitCode, 0);

  const tok = join(f.dir, 'web.token');
  const made = await admin(
    'peers',
    'token',
    'create',
    '--uses',
    '1',
    '--expires',
    '1h',
    '--group',
    'web',
    '--label',
    'role=web',
    '-o',
    tok,
  );
  t.is(made.exitCode, 0, made.stderr);
  t.regex(made.stdout, /^token [0-9a-f]{32} -> .*web\.token: 1 use\(s\) until .*, groups web$/m);
  t.is((await stat(tok)).mode & 0o777, 0o600, 'a bearer credential: readable by its owner only');
  const jq = async (filter: string) => (await execa('jq', ['-c', filter, tok], { timeout: 10_000 })).stdout;
  t.is(
    await jq('[.type, .payload.uses, .payload.groups, .payload.labels]'),
    '["enroll-token",1,["web"],{"role":"web"}]',
  );
  const tokenId = JSON.parse(await jq('.payload.id')) as string;

  const refusedScope = await op('peers', 'token', 'create', '-o', join(f.dir, 'op.token'));
  t.is(refusedScope.exitCode, 1);
  t.regex(refusedScope.stderr, /E_ENROLL_TOKEN_SCOPE: Operator .*op.* may not sign enrollment tokens/);
  const short = join(f.dir, 'short.token');
  t.is((await admin('peers', 'token', 'create', '--expires', '1s', '-o', short)).exitCode, 0);
  t.regex(
    (await admin('peers', 'token', 'create', '--expires', '1y', '-o', short)).stderr,
    /E_USAGE: --expires/,
  );
  await new Promise((r) => setTimeout(r, 1200)); // `short` is past its expiry from here on

  // The autosigner runs beside the broker (it holds the issuer key; the broker never does).
  const auto = execa(
    process.execPath,
    [
      BINS.mway,
      'peers',
      'autosign',
      '--issuer-key',
      p.peerIssuer.keyPath,
      '--issuer-cert',
      p.peerIssuer.certPath,
      '--watch',
      '--interval',
      '0.3',
      '--json',
    ],
    { env: { ...admin.env, NO_COLOR: '1' }, reject: false, buffer: false, timeout: 180_000 },
  );
  t.teardown(() => void auto.kill('SIGTERM'));
  const decisions: Array<{ peerId: string; outcome: string; code?: string; token?: string }> = [];
  let buf = '';
  auto.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) if (l !== '') decisions.push(jsonOut(l));
  });
  let stderr = '';
  auto.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });

  const m1 = await machine(t, f, p.root.certPath, 'm1', tok);
  await until('m1 accepted and linked', () => f.broker.peers.has('m1') && m1.link.connected, 60_000);
  const leaf = (await readCertificates(join(f.dir, 'm1', 'identity', 'peer.crt')))[0];
  t.is(leaf?.peerId, 'm1');
  t.like(decisions[0], { peerId: 'm1', outcome: 'accepted', token: tokenId });
  // The token's group and label: m1 takes a command to group web and carries role=web.
  await until(
    'm1 holds web',
    async () => (await admin('status', '--group', 'web', '--timeout', '5')).exitCode === 0,
  );
  const peers = jsonOut((await admin('peers', '--json')).stdout) as Array<{
    peerId: string;
    labels: Record<string, string>;
  }>;
  t.deepEqual(peers.find((x) => x.peerId === 'm1')?.labels, { role: 'web' });

  // The same single-use token again, an expired one, and none at all.
  const m2 = await machine(t, f, p.root.certPath, 'm2', tok);
  await machine(t, f, p.root.certPath, 'm3', short);
  await machine(t, f, p.root.certPath, 'm4');
  await until('m2 and m3 decided', () => decisions.length >= 3, 60_000);
  t.deepEqual(
    decisions
      .slice(1)
      .map((d) => [d.peerId, d.outcome, d.code])
      .sort(),
    [
      ['m2', 'refused', 'E_ENROLL_TOKEN_USED'],
      ['m3', 'refused', 'E_ENROLL_TOKEN_EXPIRED'],
    ],
  );
  await until('m2 told it was rejected', () => m2.logs.some((l) => /E_ENROLL_REJECTED|rejected/.test(l)));
  const states = Object.fromEntries(f.broker.db.enrollments().map((e) => [e.peerId, e.state]));
  t.deepEqual(states, { m1: 'accepted', m2: 'rejected', m3: 'rejected', m4: 'pending' });
  t.false(f.broker.peers.has('m2') || f.broker.peers.has('m3') || f.broker.peers.has('m4'));
  // The autosigner's own ledger: the one use went to m1's request.
  const ledger = JSON.parse(
    await readFile(join(admin.env.MWAY_CONFIG_DIR as string, 'enroll-tokens.json'), 'utf8'),
  );
  t.deepEqual(Object.keys(ledger.tokens), [tokenId]);
  t.is(ledger.tokens[tokenId].length, 1);

  auto.kill('SIGTERM');
  t.is((await auto).exitCode, 0, stderr);
  // One pass, nothing with a token left: exit 0 and m4 still waits for a person.
  const once = await admin(
    'peers',
    'autosign',
    '--issuer-key',
    p.peerIssuer.keyPath,
    '--issuer-cert',
    p.peerIssuer.certPath,
  );
  t.is(once.exitCode, 0, once.stderr);
  t.is(once.stdout, '');
  t.regex((await admin('peers', 'pending')).stdout, /m4/);
});
