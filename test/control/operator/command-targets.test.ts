// Target expressions, batch sizes and failure budgets.
import test from 'ava';
import {
  batchSize,
  failBudget,
  parseTarget,
  peerTerm,
  resolveTarget,
  usesFacts,
} from '../../../control/operator/targets.ts';
import { codeOf } from '../command-fixture.ts';

const fleet = [
  { id: 'web-1', groups: ['web'], labels: { zone: 'a' } },
  { id: 'web-2', groups: ['web', 'canary'], labels: { zone: 'b' } },
  { id: 'db-1', groups: ['db'], labels: { zone: 'a' } },
  { id: 'lone', groups: [] },
];

test('resolveTarget() unions terms, applies exclusions and reports groups only for pure group targets', (t) => {
  t.deepEqual(resolveTarget('group:web', fleet), { peers: ['web-1', 'web-2'], groups: ['web'] });
  t.deepEqual(resolveTarget('group:web,group:db,!group:canary', fleet), {
    peers: ['db-1', 'web-1'],
    groups: ['db', 'web'],
  });
  t.deepEqual(resolveTarget('web-*', fleet), { peers: ['web-1', 'web-2'], groups: [] });
  t.deepEqual(resolveTarget('label:zone=a', fleet), { peers: ['db-1', 'web-1'], groups: [] });
  t.deepEqual(resolveTarget('all,!lone', fleet).peers, ['db-1', 'web-1', 'web-2']);
  t.deepEqual(resolveTarget('peer:lone', fleet), { peers: ['lone'], groups: [] });
  // A peer the broker does not know is refused at once, not waited for.
  const e = t.throws(() => resolveTarget('peer:web-9,peer:web-1', fleet)) as Error & { code?: string };
  t.is(e.code, 'E_PEER_UNKNOWN');
  t.regex(e.message, /web-9/);
});

test('resolveTarget() rejects unreadable expressions with E_TARGET_INVALID', (t) => {
  for (const e of ['', 'group:../x', 'peer:a b', '!group:web', 'label:zone', 'a;b']) {
    t.is(t.throws(() => resolveTarget(e, fleet))?.message.includes('Invalid target expression'), true, e);
  }
});

test('batchSize() and failBudget() read N and N%', (t) => {
  t.is(batchSize(undefined, 40), 40);
  t.is(batchSize('5', 40), 5);
  t.is(batchSize('10%', 40), 4);
  t.is(batchSize('1%', 3), 1);
  t.throws(() => batchSize('0', 3));
  t.throws(() => batchSize('x', 3));
  t.is(failBudget(undefined, 10), 10);
  t.is(failBudget('20%', 10), 2);
  t.is(failBudget('0', 10), 0);
});

test('resolveTarget() intersects with `and` / `&`, negates factors inside, and matches facts with version order', (t) => {
  const facts = [
    {
      id: 'web-1',
      groups: ['web'],
      labels: { zone: 'a' },
      facts: { arch: 'x86_64', coreos: { version: '1.1.9' } },
    },
    {
      id: 'web-2',
      groups: ['web'],
      labels: { zone: 'b' },
      facts: { arch: 'x86_64', coreos: { version: '1.10.0' } },
    },
    { id: 'web-3', groups: ['web'], labels: { zone: 'a' } },
    {
      id: 'db-1',
      groups: ['db'],
      labels: { zone: 'a' },
      facts: { arch: 'aarch64', coreos: { version: '1.0' } },
    },
  ];
  t.deepEqual(resolveTarget('group:web and fact:coreos.version<1.2', facts), {
    peers: ['web-1'],
    groups: ['web'],
  });
  t.deepEqual(resolveTarget('group:web&label:zone=a', facts).peers, ['web-1', 'web-3']);
  t.deepEqual(resolveTarget('group:web and !label:zone=a', facts).peers, ['web-2']);
  t.deepEqual(resolveTarget('fact:arch=x86_64,fact:coreos.version<=1.0', facts).peers, [
    'db-1',
    'web-1',
    'web-2',
  ]);
  t.deepEqual(resolveTarget('all,!fact:arch!=aarch64', facts).peers, ['db-1', 'web-3']);
  t.deepEqual(resolveTarget('fact:coreos.version>=1.10', facts).peers, ['web-2'], '1.10 sorts after 1.9');
  t.deepEqual(resolveTarget('label:zone=a and fact:arch=x86_64', facts), { peers: ['web-1'], groups: [] });
  for (const e of ['fact:arch', 'fact:=x', 'group:web and ', 'fact:a..b=1'])
    t.is((t.throws(() => resolveTarget(e, facts)) as { code?: string }).code, 'E_TARGET_INVALID', e);
});

test('addr: and net: (and --peer with an address or network) match the addresses of the signed facts', (t) => {
  const facts = (a: Record<string, string[]>) => ({ addresses: a });
  const net = [
    { id: 'hub', groups: [], facts: facts({ eth0: ['10.10.0.1', 'fe80::1%eth0'] }) },
    { id: 'spoke', groups: [], facts: facts({ eth0: ['10.10.0.42'], wg0: ['172.16.42.7'] }) },
    { id: 'v6', groups: [], facts: facts({ eth0: ['2001:db8::5'] }) },
    { id: 'none', groups: [] },
  ];
  t.deepEqual(resolveTarget('addr:10.10.0.42', net).peers, ['spoke']);
  t.deepEqual(resolveTarget('net:10.10.0.0/24', net).peers, ['hub', 'spoke']);
  t.deepEqual(resolveTarget('net:172.16.42.0/24', net).peers, ['spoke']);
  t.deepEqual(resolveTarget('net:2001:db8::/32,net:fe80::/10', net).peers, ['hub', 'v6']);
  t.deepEqual(resolveTarget('net:10.0.0.0/8,!addr:10.10.0.1', net).peers, ['spoke']);
  t.deepEqual(resolveTarget('net:10.10.0.0/24', net).groups, [], 'addressed by peer, not by group');
  t.deepEqual(['10.10.0.42', '172.16.42.0/24', 'web-1', '2001:db8::5'].map(peerTerm), [
    'addr:10.10.0.42',
    'net:172.16.42.0/24',
    'peer:web-1',
    'addr:2001:db8::5',
  ]);
  t.true(usesFacts(parseTarget('group:web and net:10.0.0.0/8')));
  for (const bad of [
    'addr:10.0.0.256',
    'net:10.0.0.0/33',
    'addr:10.0.0.0/8',
    'net:fe80::/129',
    'net:10.0.0.0/x',
  ])
    t.is(
      codeOf(() => resolveTarget(bad, net)),
      'E_TARGET_INVALID',
      bad,
    );
});
