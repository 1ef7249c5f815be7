// What `mway` reports is what the peers did: a remote command that exits non-zero is a failure
// (summary and exit code), an unknown peer is refused at once, a group change is reported per
// peer from the peer's own signed answer (a scope refusal reaches the operator and the exit
// code), and `group delete` makes the members drop their signed membership. The broker, the
// peer links and `mway` are real (127.0.0.1); the agents are recording AgentApis.
import test, { type ExecutionContext } from 'ava';
import { type FleetPki, makeFleetPki } from '../control/command-fixture.ts';
import { jsonOut, until } from '../helpers.ts';
import { startFleet } from './_fleet.ts';

const pkiP = makeFleetPki();

async function fleet(t: ExecutionContext, p: FleetPki) {
  const f = await startFleet(t, p);
  await f.start(p.p1);
  await f.start(p.p2);
  return f;
}

test('a remote command that exits non-zero is a failure with its output; an unknown peer fails at once', async (t) => {
  const p = await pkiP;
  const f = await fleet(t, p);
  const admin = await f.as(p.admin, 'admin');
  const exec = await f.as(p.execOp, 'exec');
  t.is((await admin('group', 'create', 'web')).exitCode, 0);
  const add = await admin('group', 'add', 'web', 'p1', 'p2');
  t.is(add.exitCode, 0, add.stdout + add.stderr);
  t.regex(add.stdout, /2 applied, 0 not applied/);

  const bad = await exec('run', '--group', 'web', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3');
  t.is(bad.exitCode, 1, bad.stdout + bad.stderr);
  t.regex(bad.stdout, /p1\s+failed\s+E_EXEC_EXIT: sh exited 3/);
  t.regex(bad.stdout, /2 targeted, 0 succeeded, 2 failed, 0 no answer/);
  t.regex(bad.stdout, /== p1 ==\nout\n\[stderr\]\nerr\n\[exit 3\]/);
  const json = jsonOut(
    (await exec('run', '--peer', 'p2', '--json', '--static', '--', 'sh', '-c', 'exit 7')).stdout,
  ) as {
    peers: Array<{ outcome: string; code: string; output: { exitCode: number } }>;
  };
  t.like(json.peers[0], { outcome: 'failed', code: 'E_EXEC_EXIT', output: { exitCode: 7 } });
  const good = await exec('run', '--group', 'web', '--', 'sh', '-c', 'exit 0');
  t.is(good.exitCode, 0, good.stdout + good.stderr);

  // A typo in a peer id: refused before anything is signed, with the code, not after 60 s.
  for (const args of [
    ['status', '--peer', 'web-9'],
    ['status', '--peer', 'web-9', '--dry-run'],
    ['status', '--target', 'peer:p1,peer:web-9'],
  ]) {
    const r = await admin(...args);
    t.is(r.exitCode, 1, args.join(' '));
    t.regex(r.stderr, /E_PEER_UNKNOWN: .*web-9/, args.join(' '));
  }
  const jobs = jsonOut((await admin('jobs', '--json')).stdout) as unknown[];
  t.is(jobs.length, 3, 'the refused targets submitted nothing');
  // `audit --limit N` shows the newest N entries (the end of the chain), in order.
  const all = jsonOut((await admin('audit', '--json')).stdout) as Array<{ seq: number }>;
  const last = jsonOut((await admin('audit', '--limit', '2', '--json')).stdout) as Array<{ seq: number }>;
  t.deepEqual(
    last.map((e) => e.seq),
    all.slice(-2).map((e) => e.seq),
  );
  t.true(all.length > 2);
});

test("group changes report each peer's signed answer: unknown peers refused, scope refusals reach the operator, delete makes peers drop the membership", async (t) => {
  const p = await pkiP;
  const f = await fleet(t, p);
  const admin = await f.as(p.admin, 'admin');
  const op = await f.as(p.op, 'op'); // groups web only
  t.is((await admin('group', 'create', 'web')).exitCode, 0);
  t.is((await admin('group', 'create', 'db')).exitCode, 0);

  const typo = await admin('group', 'add', 'web', 'p1', 'nosuch');
  t.is(typo.exitCode, 1);
  t.regex(typo.stderr, /E_PEER_UNKNOWN: .*nosuch.*nothing was signed/);
  const listed = jsonOut((await admin('group', 'list', '--json')).stdout) as Array<{
    group: string;
    members: string[];
  }>;
  t.deepEqual(
    listed.map((g) => [g.group, g.members]),
    [
      ['db', []],
      ['web', []],
    ],
    'nothing was added',
  );

  // An operator whose certificate does not cover `db`: every peer refuses, and says so.
  const out = await op('group', 'add', 'db', '--all-unassigned', '--json');
  t.is(out.exitCode, 1, out.stdout + out.stderr);
  const rep = jsonOut(out.stdout) as {
    applied: number;
    peers: Array<{ peer: string; outcome: string; code: string }>;
  };
  t.is(rep.applied, 0);
  t.deepEqual(
    rep.peers.map((x) => [x.peer, x.outcome, x.code]),
    [
      ['p1', 'refused', 'E_MEMBERSHIP_SCOPE'],
      ['p2', 'refused', 'E_MEMBERSHIP_SCOPE'],
    ],
  );
  const text = await op('group', 'add', 'db', 'p1');
  t.is(text.exitCode, 1);
  t.regex(text.stdout, /p1: refused E_MEMBERSHIP_SCOPE: .*may not manage group db/);
  const groups = jsonOut((await admin('group', 'list', '--json')).stdout) as Array<{
    group: string;
    members: string[];
  }>;
  t.deepEqual(groups.find((g) => g.group === 'db')?.members, [], 'a refused membership is not listed');

  const add = await op('group', 'add', 'web', 'p1', 'p2');
  t.is(add.exitCode, 0, add.stdout + add.stderr);
  t.regex(add.stdout, /added p1 to web\nadded p2 to web/);
  const signedGroups = async () =>
    (jsonOut((await admin('status', '--json')).stdout) as Array<{ peer: string; groups?: string[] }>).map(
      (r) => [r.peer, r.groups ?? []],
    );
  await until(
    'the peers report web',
    async () =>
      JSON.stringify(await signedGroups()) ===
      JSON.stringify([
        ['p1', ['web']],
        ['p2', ['web']],
      ]),
  );

  const del = await op('group', 'delete', 'web');
  t.is(del.exitCode, 0, del.stdout + del.stderr);
  t.regex(del.stdout, /removed p1 from web\nremoved p2 from web\n.*2 applied.*\ngroup web deleted/);
  await until(
    'the peers dropped web',
    async () =>
      JSON.stringify(await signedGroups()) ===
      JSON.stringify([
        ['p1', []],
        ['p2', []],
      ]),
  );
  t.false(
    (jsonOut((await admin('group', 'list', '--json')).stdout) as Array<{ group: string }>).some(
      (g) => g.group === 'web',
    ),
  );

  // An offline member: the change is queued and the exit code says it is not applied yet.
  t.is((await admin('group', 'create', 'web')).exitCode, 0);
  await f.links.get('p2')?.stop();
  await until('p2 offline', () => !f.broker.peers.has('p2'));
  const off = await admin('group', 'add', 'web', 'p1', 'p2');
  t.is(off.exitCode, 1);
  t.regex(off.stdout, /added p1 to web\np2: offline, the signed change is queued/);
});
