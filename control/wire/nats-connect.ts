// The one way NATS mode connects to the servers (doc/nats.md): as a named user with its own
// credentials and inbox prefix (nats-credentials.ts), reconnecting without end, and leaving a
// stalled server after two missed pings. A refused user is E_NATS_CREDENTIALS; other failures
// are the client's own error, for the caller's retry loop.
// The NATS client is loaded only when NATS mode is used (an agent or broker without it never loads it).
import { readFile } from 'node:fs/promises';
import type { NatsConnection } from '@nats-io/transport-node';
import { errorMessage } from '../../common/index.ts';
import { ControlError } from './control-error.ts';
import { natsAuthOptions } from './nats-credentials.ts';
import type { NatsRole } from './nats-permissions.ts';

export interface NatsConnectOptions {
  servers: string[];
  who: NatsRole;
  /** The user's nkey seed file; without it the client connects without credentials. */
  nkey?: string | undefined;
  /**
   * PEM file of the CA that issued the servers' TLS certificates (nats-server's `tls` block);
   * without it a server that asks for TLS is checked against Node's CA store.
   */
  ca?: string | undefined;
  name: string;
}

async function readCa(file: string): Promise<string> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (e) {
    throw new ControlError('E_NATS_TLS', `Cannot read the NATS CA file ${file}: ${errorMessage(e)}`, {
      path: file,
      cause: e,
    });
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw new ControlError('E_NATS_TLS', `NATS CA file ${file} holds no PEM certificate`, { path: file });
  return pem;
}

export async function connectNats(o: NatsConnectOptions): Promise<NatsConnection> {
  const auth = await natsAuthOptions(o.who, o.nkey);
  const ca = o.ca === undefined ? undefined : await readCa(o.ca);
  const { connect } = await import('@nats-io/transport-node');
  try {
    return await connect({
      servers: o.servers,
      ...auth,
      ...(ca === undefined ? {} : { tls: { ca } }),
      name: o.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      timeout: 5000,
      // A server that stalls (stopped, partitioned) is left after two missed pings, 10-15 s, not
      // the client's default of minutes; the others take over.
      pingInterval: 5000,
      maxPingOut: 2,
    });
  } catch (e) {
    if (/certificate|self.signed|altname|unable to verify/i.test(errorMessage(e)))
      throw new ControlError(
        'E_NATS_TLS',
        `NATS servers ${o.servers.join(', ')}: TLS certificate not accepted for ${o.name}: ${errorMessage(e)}${o.ca === undefined ? " (no nats.ca configured: Node's CA store)" : ` (CA ${o.ca})`}`,
        { cause: e },
      );
    if (/authorization violation|authentication/i.test(errorMessage(e)))
      throw new ControlError(
        'E_NATS_CREDENTIALS',
        `NATS servers ${o.servers.join(', ')} refused ${o.name}: ${errorMessage(e)}${o.nkey === undefined ? ' (no nkey configured)' : ` (nkey ${o.nkey})`}`,
        { cause: e },
      );
    throw e;
  }
}
