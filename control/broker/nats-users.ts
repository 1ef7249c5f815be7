// NATS mode's users file (doc/nats.md, doc/nats-users.schema.json): the public nkey of the
// broker, of each peer, of each auditor and of the shared enrolling user. From it `milkywaysrvd nats-authorization` writes the
// servers' `authorization` block, every user with the permissions of its role
// (control/wire/nats-permissions.ts). Public keys only: the servers' config holds no secret.
import { readFile } from 'node:fs/promises';
import { errorMessage, schema } from '../../common/index.ts';
import { natsPermissions, type NatsPermissions } from '../wire/index.ts';
import { BrokerError } from './broker-error.ts';

const { configObject, defineFormat, record, text, v } = schema;

const nkey = () =>
  text({ pattern: /^U[A-Z2-7]{55}$/, hint: 'is not an nkey user public key (U and 55 base32 characters)' });
const id = () => text({ pattern: /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/, hint: 'is not an id' });

const natsUsersSchema = configObject({
  broker: v.pipe(nkey(), v.description("The broker's public nkey (milkywaysrvd nats-user)")),
  peers: v.pipe(record(id(), nkey()), v.description('Peer id → its public nkey')),
  enroll: v.pipe(
    v.optional(nkey()),
    v.description(
      'The public nkey every machine without a certificate enrolls with (one shared seed in the image; doc/nats.md)',
    ),
  ),
  auditors: v.pipe(
    v.optional(record(id(), nkey()), {}),
    v.description('Name → public nkey of a user that may read the audit stream (mway audit --nats)'),
  ),
});

export const natsUsersFormat = defineFormat({
  name: 'nats-users',
  title: 'MilkyWay NATS users (milkywaysrvd nats-authorization --users)',
  schema: natsUsersSchema,
  error: (issue, path) =>
    new BrokerError('E_CONFIG', `Cannot read NATS users ${path ?? ''}: ${issue.keyPath}: ${issue.problem}`, {
      ...(path === undefined ? {} : { path }),
      details: { field: issue.keyPath },
    }),
});

export type NatsUsers = schema.Output<typeof natsUsersSchema>;

export async function readNatsUsers(path: string): Promise<NatsUsers> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new BrokerError('E_CONFIG', `Cannot read NATS users ${path}: ${errorMessage(e)}`, {
      path,
      cause: e,
    });
  }
  return natsUsersFormat.parse(json, path);
}

/** nats-server's `authorization` object: one nkey user per broker, peer and auditor. */
export function natsAuthorization(u: NatsUsers): {
  users: Array<{ nkey: string; permissions: NatsPermissions }>;
} {
  const keys = [
    u.broker,
    ...Object.values(u.peers),
    ...Object.values(u.auditors),
    ...(u.enroll === undefined ? [] : [u.enroll]),
  ];
  const dup = keys.find((k, i) => keys.indexOf(k) !== i);
  if (dup !== undefined)
    throw new BrokerError('E_CONFIG', `NATS users: nkey ${dup} is given to two users; each needs its own`);
  return {
    users: [
      { nkey: u.broker, permissions: natsPermissions({ role: 'broker' }) },
      ...Object.entries(u.peers).map(([peerId, k]) => ({
        nkey: k,
        permissions: natsPermissions({ role: 'peer', peerId }),
      })),
      ...Object.entries(u.auditors).map(([name, k]) => ({
        nkey: k,
        permissions: natsPermissions({ role: 'auditor', name }),
      })),
      ...(u.enroll === undefined
        ? []
        : [{ nkey: u.enroll, permissions: natsPermissions({ role: 'enroll' }) }]),
    ],
  };
}

/** The block for nats-server's config file (its format reads JSON; `include` it from the main config). */
export function natsAuthorizationConf(u: NatsUsers): string {
  return `authorization: ${JSON.stringify(natsAuthorization(u), null, 2)}\n`;
}
