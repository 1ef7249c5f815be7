// Enrollment from the agent's side: peer links with one and the same `control` config (no
// identity baked in, only `enroll.dir` on each machine's own disk) generate their keys, ask the
// broker, show up in `mway peers pending` with their facts, are accepted under the ids and
// labels the operator chooses, store the certificate and link; a restart reuses it; a
// rejected machine stops asking; a second machine cannot take an id another one holds.
import { hostname } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { startPeerLink } from '../../agent/remote/peer-link.ts';
import { readCertificates } from '../../keys/index.ts';
import { recorder } from '../agent/remote/recording-agent.ts';
import { makeFleetPki } from '../control/command-fixture.ts';
import { jsonOut, until } from '../helpers.ts';
import { startFleet } from './_fleet.ts';

const pkiP = makeFleetPki();

interface Pending {
  requestId: string;
  peerId: string;
  name: string;
  fingerprint: string;
  facts: { hostname: string; arch: string; kernel: string };
}

test('agents without an identity enroll through the broker, are accepted with ids, labels and groups, and take signed commands', async (t) => {
  const p = await pkiP;
  const fleet = await startFleet(t, p);
  const { broker, address, dir } = fleet;
  const mway = await fleet.as(p.admin, 'admin', 60_000);

  // One config for every machine: what differs is only the disk each one has.
  const machine = (t: ExecutionContext, name: string, logs: string[] = []) =>
    startPeerLink({
      api: recorder().api,
      stateDir: join(dir, name, 'data'),
      log: (level, m) => void logs.push(`${level} ${m}`),
      config: {
        broker: address,
        fleet: 'prod',
        anchors: [p.root.certPath],
        enroll: { dir: join(dir, name, 'identity'), labels: { image: 'web' }, pollMs: 200 },
        maxBackoffMs: 300,
      },
    }).then((l) => {
      t.teardown(() => l.stop());
      return l;
    });
  const logsA: string[] = [];
  const a = await machine(t, 'a', logsA);
  const b = await machine(t, 'b');
  const pending = async () => jsonOut((await mway('peers', 'pending', '--json')).stdout) as Pending[];
  await until('two requests pending', async () => (await pending()).length === 2);
  const rows = await pending();
  t.true(
    rows.every((r) => r.peerId === hostname() || r.peerId.startsWith('mw-')),
    'the hostname is the suggested id',
  );
  t.is(rows[0]?.facts.hostname, hostname());
  t.truthy(rows[0]?.facts.kernel);
  const fpA = /key fingerprint ([0-9a-f]{64})/.exec(logsA.join('\n'))?.[1];
  t.truthy(fpA, 'the fingerprint is on the console');
  const rowA = rows.find((r) => r.fingerprint === fpA) as Pending;
  const rowB = rows.find((r) => r.fingerprint !== fpA) as Pending;
  const text = await mway('peers', 'pending');
  t.regex(text.stdout, new RegExp(`${rowA.requestId}  .*  ${fpA}\\n    ${hostname()}  `));

  t.is((await mway('group', 'create', 'web')).exitCode, 0);
  const R = ['--issuer-key', p.peerIssuer.keyPath, '--issuer-cert', p.peerIssuer.certPath];
  const acc = await mway(
    'peers',
    'accept',
    rowA.requestId,
    ...R,
    '--peer-id',
    'web-1',
    '--label',
    'role=web,zone=a',
    '--group',
    'web',
  );
  t.is(acc.exitCode, 0, acc.stdout + acc.stderr);
  t.regex(acc.stdout, /accepted web-1 .*\nmembership of web signed/);
  await until('web-1 linked', () => broker.peers.has('web-1') && a.peerId === 'web-1' && a.connected);
  const leaf = (await readCertificates(join(dir, 'a', 'identity', 'peer.crt')))[0];
  t.is(leaf?.peerId, 'web-1', 'the certificate is stored beside the keys');

  // Another machine may not take an id someone holds.
  const taken = await mway('peers', 'accept', rowB.requestId, ...R, '--peer-id', 'web-1');
  t.is(taken.exitCode, 1);
  t.regex(taken.stderr, /E_ENROLL_TAKEN/);
  t.is((await mway('peers', 'accept', rowB.requestId, ...R, '--peer-id', 'web-2')).exitCode, 0);
  await until('web-2 linked', () => broker.peers.has('web-2') && b.connected);

  await until('web-1 holds web', async () => {
    const r = await mway('status', '--group', 'web', '--timeout', '5', '--json', '--static');
    return r.exitCode === 0;
  });
  const peers = jsonOut((await mway('peers', '--json')).stdout) as Array<{
    peerId: string;
    labels: Record<string, string>;
    facts?: { hostname: string; arch: string };
  }>;
  t.deepEqual(peers.find((x) => x.peerId === 'web-1')?.labels, { role: 'web', zone: 'a' });
  t.deepEqual(
    peers.find((x) => x.peerId === 'web-2')?.labels,
    { image: 'web' },
    "the machine's own labels by default",
  );
  await until('facts in the signed status', async () => {
    const f = jsonOut((await mway('facts', '--json')).stdout) as Array<{
      peer: string;
      status: string;
      facts?: { hostname?: string };
    }>;
    return f.length === 2 && f.every((r) => r.status === 'verified' && r.facts?.hostname === hostname());
  });
  const f = await mway('facts', '--peer', 'web-1');
  t.regex(f.stdout, new RegExp(`^web-1 +${hostname()}  (x86_64|aarch64)  `));
  t.regex((await mway('facts', '--peer', 'web-9')).stderr, /E_PEER_UNKNOWN/);
  // Targeting by the facts of the signed status, ANDed with a group; a dry run fails as the real run would.
  const byFact = await mway(
    'status',
    '--target',
    `group:web and fact:hostname=${hostname()}`,
    '--dry-run',
    '--json',
    '--static',
  );
  t.is(byFact.exitCode, 0, byFact.stderr);
  t.deepEqual(
    (jsonOut(byFact.stdout) as { peers: Array<{ peer: string }> }).peers.map((x) => x.peer),
    ['web-1'],
  );
  const none = await mway('status', '--target', 'fact:arch=sparc64', '--dry-run');
  t.is(none.exitCode, 1);
  t.regex(none.stderr, /E_TARGET_EMPTY/);

  // A restart reuses the stored identity: no new request.
  await a.stop();
  const a2 = await machine(t, 'a');
  await until('web-1 back', () => a2.connected && a2.peerId === 'web-1');
  t.deepEqual(await pending(), []);

  // A rejected machine stops asking and says why.
  const logsC: string[] = [];
  const c = await machine(t, 'c', logsC);
  await until('c pending', async () => (await pending()).length === 1);
  const rowC = (await pending())[0] as Pending;
  t.is((await mway('peers', 'reject', rowC.requestId)).exitCode, 0);
  await until('c gave up', () => logsC.some((l) => /peer link stopped: E_ENROLL_REJECTED/.test(l)));
  t.false(c.connected);
});
