// The broker config (control/broker/broker-config.ts): one schema, E_CONFIG naming the key
// path, relative paths resolved against the file's folder, doc/broker-config.schema.json
// (read by Ajv) agreeing with the validator.
import test from 'ava';
import { parseBrokerConfig, validateBrokerConfig } from '../../../control/broker/broker-config.ts';
import {
  assertMutationsRefusedCleanly,
  assertRefused,
  deep,
  publishedValidator,
} from '../../schema-fixture.ts';

const valid = {
  $schema: '../doc/broker-config.schema.json',
  listen: '127.0.0.1:7443',
  key: 'broker.key',
  certificate: 'broker.crt',
  anchors: ['user-root.crt'],
  crls: 'user.crl',
  database: 'broker.db',
  mdns: { enabled: false, name: 'b1', port: 5353 },
  expirySweepMs: 500,
};
const parse = (x: unknown) => validateBrokerConfig(x, '/etc/mway/broker.json');
const published = publishedValidator('broker-config');

test('parseBrokerConfig() resolves paths against the config folder and fills defaults', (t) => {
  t.deepEqual(parse(valid), {
    listen: { host: '127.0.0.1', port: 7443 },
    key: '/etc/mway/broker.key',
    certificate: '/etc/mway/broker.crt',
    anchors: ['/etc/mway/user-root.crt'],
    crls: ['/etc/mway/user.crl'],
    database: '/etc/mway/broker.db',
    mdns: { enabled: false, name: 'b1', port: 5353 },
    expirySweepMs: 500,
  });
  const d = parse({ key: 'k', certificate: 'c', anchors: 'a.crt' });
  t.deepEqual(d.listen, { host: '0.0.0.0', port: 7443 });
  t.is(d.database, '/var/lib/milkyway/broker.db');
  t.deepEqual(d.mdns, { enabled: true, name: 'milkyway-broker' });
  t.true(published(valid));
});

const hostile: [string, unknown, string, boolean?][] = [
  ['an array', [], '(top level)'],
  ['an unknown key', { ...valid, lisen: ':1' }, 'lisen'],
  ['no key', { ...valid, key: undefined }, 'key'],
  ['no anchors', { ...valid, anchors: undefined }, 'anchors'],
  ['empty anchors', { ...valid, anchors: [] }, 'anchors'],
  ['an anchor not a path', { ...valid, anchors: ['a', 3] }, 'anchors[1]'],
  ['listen not host:port', { ...valid, listen: 'localhost' }, 'listen'],
  ['listen a number', { ...valid, listen: 7443 }, 'listen'],
  ['a port past 65535', { ...valid, listen: ':99999' }, 'listen', true],
  ['mdns an array', { ...valid, mdns: [] }, 'mdns'],
  ['an unknown mdns key', { ...valid, mdns: { enabled: true, ttl: 1 } }, 'mdns.ttl'],
  ['mdns.enabled a string', { ...valid, mdns: { enabled: 'yes' } }, 'mdns.enabled'],
  ['a bad mdns name', { ...valid, mdns: { name: 'a b' } }, 'mdns.name'],
  ['a huge mdns port', { ...valid, mdns: { port: 1e308 } }, 'mdns.port'],
  ['a tiny sweep', { ...valid, expirySweepMs: 1 }, 'expirySweepMs'],
  ['an unsafe integer sweep', { ...valid, expirySweepMs: 2 ** 60 }, 'expirySweepMs'],
  ['a deep database', { ...valid, database: deep(50_000) }, 'database'],
];
for (const [what, raw, key, postCheck] of hostile) {
  test(`parseBrokerConfig() refuses ${what} naming ${key}`, (t) => {
    assertRefused(t, () => parse(raw), 'E_CONFIG', key, what);
    t.is(published(raw), postCheck === true, 'doc/broker-config.schema.json (Ajv) agrees');
  });
}

test('parseBrokerConfig() reads a 100,000-deep JSON text and names the key', (t) => {
  const text = `{"key": ${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}`;
  assertRefused(t, () => parseBrokerConfig(text, '/b.json'), 'E_CONFIG', 'key', 'deep text');
});

test('parseBrokerConfig() refuses text that is not JSON, naming the file', (t) => {
  const e = t.throws(() => parseBrokerConfig('{', '/etc/b.json'), { code: 'E_CONFIG' } as never);
  t.regex(e?.message ?? '', /Cannot read broker config \/etc\/b\.json: not JSON/);
});

test('parseBrokerConfig() refuses every wrong value at every key path with E_CONFIG', (t) => {
  assertMutationsRefusedCleanly(t, valid, parse, 'E_CONFIG');
});
