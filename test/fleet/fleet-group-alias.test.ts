// The seed's spelling of making a group from the new machines (milkyway-README:
// `mway group --make-peer-group --all-unassigned --name my_network`) does what
// `group create NAME` and `group add NAME --all-unassigned` do: the group exists, every peer in
// no group got a signed membership it applied, and peers already in a group were left alone.
// Broker, peer links and `mway` are real (127.0.0.1); the agents are recording AgentApis.
import test from 'ava';
import { makeFleetPki } from '../control/command-fixture.ts';
import { jsonOut } from '../helpers.ts';
import { startFleet } from './_fleet.ts';

const pkiP = makeFleetPki();

test('group --make-peer-group --all-unassigned --name creates the group and adds exactly the unassigned peers', async (t) => {
  const p = await pkiP;
  const f = await startFleet(t, p);
  await f.start(p.p1);
  await f.start(p.p2);
  const admin = await f.as(p.admin, 'admin');
  t.is((await admin('group', 'create', 'web')).exitCode, 0);
  t.is((await admin('group', 'add', 'web', 'p1')).exitCode, 0);

  const r = await admin('group', '--make-peer-group', '--all-unassigned', '--name', 'my_network', '--json');
  t.is(r.exitCode, 0, r.stdout + r.stderr);
  const rep = jsonOut(r.stdout) as {
    group: string;
    created: boolean;
    applied: number;
    peers: Array<{ peer: string; outcome: string }>;
  };
  t.like(rep, { group: 'my_network', created: true, applied: 1 });
  t.deepEqual(
    rep.peers.map((x) => [x.peer, x.outcome]),
    [['p2', 'applied']],
  );
  const groups = jsonOut((await admin('group', 'list', '--json')).stdout) as Array<{
    group: string;
    members: string[];
  }>;
  t.deepEqual(groups.find((g) => g.group === 'my_network')?.members, ['p2']);
  t.deepEqual(groups.find((g) => g.group === 'web')?.members, ['p1']);

  // The seed's next lines target that group as --peer-group: the same flag as --group, so it
  // resolves the same peers, and both names at once are a repeat, refused before anything is sent.
  const dry = await admin('reboot', '--peer-group', 'my_network', '--dry-run', '--json', '--static');
  t.is(dry.exitCode, 0, dry.stdout + dry.stderr);
  t.deepEqual(
    (jsonOut(dry.stdout) as { peers: Array<{ peer: string }> }).peers.map((x) => x.peer),
    ['p2'],
  );
  const both = await admin('reboot', '--peer-group', 'my_network', '--group', 'web');
  t.is(both.exitCode, 2, both.stdout + both.stderr);
  t.regex(both.stderr, /E_USAGE: --group given more than once/);

  // Nobody is unassigned now: the group is still made, and the text says why it is empty.
  const empty = await admin('group', '--make-peer-group', '--all-unassigned', '--name', 'later');
  t.is(empty.exitCode, 0, empty.stdout + empty.stderr);
  t.is(empty.stdout.trim(), 'group later created: no unassigned peers');
});

test('group without a subcommand or --make-peer-group is a usage error, and nothing is created', async (t) => {
  const p = await pkiP;
  const f = await startFleet(t, p);
  await f.start(p.p1);
  const admin = await f.as(p.admin, 'admin');
  for (const [args, msg] of [
    [[], /No command given; one of: create, add/],
    [['--all-unassigned', '--name', 'x'], /need --make-peer-group/],
    [['--make-peer-group', '--all-unassigned'], /--make-peer-group needs --name NAME/],
    [['--make-peer-group', '--name', 'x', '--frobnicate'], /Unknown flag --frobnicate/],
    [['--make-peer-group', '--name'], /--name needs a value/],
    [['--make-peer-group', '--name', 'x', 'extra'], /Unknown command extra/],
  ] as const) {
    const r = await admin('group', ...args);
    t.is(r.exitCode, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    t.regex(r.stderr, msg, args.join(' '));
    t.regex(r.stderr, /E_USAGE/, args.join(' '));
  }
  const j = await admin('group', '--json');
  t.like(jsonOut(j.stdout), {
    ok: false,
    error: { code: 'E_USAGE', details: { reason: 'unknown-command' } },
  });
  const groups = jsonOut((await admin('group', 'list', '--json')).stdout) as unknown[];
  t.deepEqual(groups, []);
});
