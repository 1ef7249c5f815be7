// The one way NATS mode connects to the servers (doc/nats.md): as a named user with its own
// credentials and inbox prefix (nats-credentials.ts), reconnecting without end, and leaving a
// stalled server after two missed pings. A refused user is E_NATS_CREDENTIALS; other failures
// are the client's own error, for the caller's retry loop.
// The NATS client is loaded only when NATS mode is used (an agent or broker without it never loads it).
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
  name: string;
}

export async function connectNats(o: NatsConnectOptions): Promise<NatsConnection> {
  const auth = await natsAuthOptions(o.who, o.nkey);
  const { connect } = await import('@nats-io/transport-node');
  try {
    return await connect({
      servers: o.servers,
      ...auth,
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
    if (/authorization violation|authentication/i.test(errorMessage(e)))
      throw new ControlError(
        'E_NATS_CREDENTIALS',
        `NATS servers ${o.servers.join(', ')} refused ${o.name}: ${errorMessage(e)}${o.nkey === undefined ? ' (no nkey configured)' : ` (nkey ${o.nkey})`}`,
        { cause: e },
      );
    throw e;
  }
}
