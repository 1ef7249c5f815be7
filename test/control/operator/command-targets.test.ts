// Target expressions, batch sizes and failure budgets.
import test from 'ava';
import { batchSize, failBudget, resolveTarget } from '../../../control/operator/targets.ts';

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
