// Signed group memberships: only an operator in charge of the group may sign one, only the
// named peer accepts it, a newer statement wins and an old one replayed cannot undo it.
import test from 'ava';
import { signEnvelope } from '../../../keys/index.ts';
import { MembershipStore } from '../../../agent/remote/membership-store.ts';
import { scopeHasAction, signMembership, verifyMembership } from '../../../control/wire/membership.ts';
import { moduleScope, parseModuleRunArgs, scopeCoversModule } from '../../../control/wire/module-run.ts';
import { tempDir } from '../../helpers.ts';
import { codeOf, codeOfAsync, makeFleetPki } from '../command-fixture.ts';

const pkiP = makeFleetPki();
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000 + 3_600_000);

test('an operator in charge of the group signs a membership the named peer accepts', async (t) => {
  const p = await pkiP;
  const m = signMembership({
    fleet: 'prod',
    group: 'web',
    peer: 'p1',
    member: true,
    key: p.op.key,
    chain: p.op.chain,
    now: NOW,
  });
  const v = verifyMembership(m, {
    anchors: [p.root.cert],
    crls: [p.crl],
    at: NOW,
    fleet: 'prod',
    peer: 'p1',
  });
  t.is(v.payload.group, 'web');
  t.is(v.signer.subject, 'op');
});

test('memberships are refused for another peer, outside scope, from a revoked or foreign operator', async (t) => {
  const p = await pkiP;
  const o = { anchors: [p.root.cert], crls: [p.crl], at: NOW, fleet: 'prod', peer: 'p1' };
  const sign = (by: typeof p.op, group: string, peer = 'p1') =>
    signMembership({ fleet: 'prod', group, peer, member: true, key: by.key, chain: by.chain, now: NOW });
  t.is(
    codeOf(() => verifyMembership(sign(p.op, 'web', 'p2'), o)),
    'E_MEMBERSHIP_PEER',
  );
  t.is(
    codeOf(() => verifyMembership(sign(p.op, 'db'), o)),
    'E_MEMBERSHIP_SCOPE',
  );
  // execop may command web but not manage its members (no `group` action).
  t.is(
    codeOf(() => verifyMembership(sign(p.execOp, 'web'), o)),
    'E_MEMBERSHIP_SCOPE',
  );
  t.is(
    codeOf(() => verifyMembership(sign(p.revokedOp, 'web'), o)),
    'E_MEMBERSHIP_REVOKED',
  );
  t.is(
    codeOf(() => verifyMembership(sign(p.foreignOp, 'web'), o)),
    'E_MEMBERSHIP_INVALID',
  );
  // A broker inventing a membership has no operator key: a peer's own signature is not one.
  const invented = signEnvelope({
    type: 'result',
    payload: { v: 1, fleet: 'prod', group: 'web', peer: 'p1', member: true, issuedAt: NOW.toISOString() },
    key: p.p1.key,
    chain: p.p1.chain,
  });
  t.is(
    codeOf(() => verifyMembership({ ...invented, type: 'membership' }, o)),
    'E_MEMBERSHIP_INVALID',
  );
});

test('the store keeps the newest statement per group, persists it, and ignores a replayed older one', async (t) => {
  const p = await pkiP;
  const dir = await tempDir(t);
  const o = { anchors: [p.root.cert], crls: [p.crl], at: NOW, fleet: 'prod', peer: 'p1' };
  const join = signMembership({
    fleet: 'prod',
    group: 'web',
    peer: 'p1',
    member: true,
    key: p.op.key,
    chain: p.op.chain,
    now: NOW,
  });
  const leave = signMembership({
    fleet: 'prod',
    group: 'web',
    peer: 'p1',
    member: false,
    key: p.op.key,
    chain: p.op.chain,
    now: new Date(NOW.getTime() + 5000),
  });
  const store = new MembershipStore(dir);
  await store.load();
  await store.add(join, o);
  t.deepEqual([...store.groups(o).keys()], ['web']);
  await store.add(leave, o);
  t.deepEqual([...store.groups(o).keys()], []);
  await store.add(leave, o);
  t.deepEqual([...store.groups(o).keys()], [], 'the same leave resent by the broker is a no-op');
  t.is(
    await codeOfAsync(() => store.add(join, o)),
    'E_MEMBERSHIP_SUPERSEDED',
    'an older join replayed is refused, not reported as applied',
  );
  t.deepEqual([...store.groups(o).keys()], [], 'an older join replayed does not undo the leave');
  // A remove and a re-add within one second (a script) are still ordered.
  const rejoin = signMembership({
    fleet: 'prod',
    group: 'web',
    peer: 'p1',
    member: true,
    key: p.op.key,
    chain: p.op.chain,
    now: new Date(NOW.getTime() + 5300),
  });
  await store.add(rejoin, o);
  t.deepEqual([...store.groups(o).keys()], ['web'], 'a re-add 300 ms after the leave holds');
  const leaveAgain = signMembership({
    fleet: 'prod',
    group: 'web',
    peer: 'p1',
    member: false,
    key: p.op.key,
    chain: p.op.chain,
    now: new Date(NOW.getTime() + 5600),
  });
  await store.add(leaveAgain, o);
  const reloaded = new MembershipStore(dir);
  await reloaded.load();
  t.deepEqual([...reloaded.groups(o).keys()], []);
  t.is(
    await codeOfAsync(() =>
      store.add(
        signMembership({
          fleet: 'prod',
          group: 'db',
          peer: 'p1',
          member: true,
          key: p.op.key,
          chain: p.op.chain,
          now: NOW,
        }),
        o,
      ),
    ),
    'E_MEMBERSHIP_SCOPE',
  );
});

test('a held membership stops counting once its operator is revoked', async (t) => {
  const p = await pkiP;
  const dir = await tempDir(t);
  const store = new MembershipStore(dir);
  await store.load();
  const m = signMembership({
    fleet: 'prod',
    group: 'web',
    peer: 'p1',
    member: true,
    key: p.revokedOp.key,
    chain: p.revokedOp.chain,
    now: NOW,
  });
  await store.add(m, { anchors: [p.root.cert], crls: [], at: NOW, fleet: 'prod', peer: 'p1' });
  t.deepEqual(
    [...store.groups({ anchors: [p.root.cert], crls: [], at: NOW, fleet: 'prod', peer: 'p1' }).keys()],
    ['web'],
  );
  t.deepEqual(
    [...store.groups({ anchors: [p.root.cert], crls: [p.crl], at: NOW, fleet: 'prod', peer: 'p1' }).keys()],
    [],
  );
});

test('scopeHasAction() reads actions, families and verbs; * never covers exec', async (t) => {
  const p = await pkiP;
  const fake = (actions: string[]) => ({ ...p.op.cert, scope: { groups: ['web'], actions } });
  t.true(scopeHasAction(fake(['service.restart']), 'service.restart'));
  t.true(scopeHasAction(fake(['service']), 'service.logs'));
  t.true(scopeHasAction(fake(['restart', 'logs']), 'service.restart'));
  t.false(scopeHasAction(fake(['restart']), 'service.stop'));
  t.true(scopeHasAction(fake(['*']), 'layer.install'));
  t.false(scopeHasAction(fake(['*']), 'exec'));
  t.true(scopeHasAction(fake(['exec']), 'exec'));
});

test('module.run is covered by no generic entry: only module:<layer>.<action> or module:<layer>', async (t) => {
  const p = await pkiP;
  const fake = (actions: string[]) => ({ ...p.op.cert, scope: { groups: ['web'], actions } });
  for (const entries of [['*'], ['module'], ['run'], ['module.run']])
    t.false(scopeHasAction(fake(entries), 'module.run'), entries.join(','));
  t.true(scopeCoversModule(['module:vpn.init'], 'vpn', 'init'));
  t.true(scopeCoversModule(['module:vpn'], 'vpn', 'status'));
  t.false(scopeCoversModule(['module:vpn.init'], 'vpn', 'status'));
  t.false(scopeCoversModule(['module:vp'], 'vpn', 'init'));
  t.false(scopeCoversModule(['*', 'module', 'module:*'], 'vpn', 'init'));
  t.is(moduleScope('vpn', 'init'), 'module:vpn.init');
  const malformed: [Record<string, unknown>, string][] = [
    [{ action: 'init', args: {} }, 'args.module'],
    [{ module: 'Vpn', action: 'init', args: {} }, 'args.module'],
    [{ module: 'vpn', action: 'init', args: [] }, 'args.args'],
    [{ module: 'vpn', action: 'init', args: {}, manifest: 'abc' }, 'args.manifest'],
    [{ module: 'vpn', action: 'init', args: {}, extra: 1 }, 'args.extra'],
  ];
  for (const [args, path] of malformed) {
    const e = t.throws(() => parseModuleRunArgs(args)) as unknown as { code: string; path: string };
    t.is(e.code, 'E_CMD_MALFORMED');
    t.is(e.path, path);
  }
});
