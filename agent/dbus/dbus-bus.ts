// One connection to a D-Bus message bus (dbus-next underneath), hardened for use inside
// PID 1: every call has a deadline, every pending call fails when the connection ends
// (dbus-next itself leaves them pending forever), and nothing throws asynchronously.

import { EventEmitter } from 'node:events';
import dbus, { type Message, type MessageBus } from 'dbus-next';
import type { CommonCode, MilkyWayError, MilkyWayErrorOptions } from '../../common/index.ts';
import type { AgentCode } from '../core/agent-codes.ts';
import { AgentError } from '../core/agent-error.ts';

export interface BusConnection {
  readonly bus: MessageBus;
  /** Our unique name on the bus (":1.42"). */
  readonly uniqueName: string;
  /** The address connected to ("system" for the system bus default). */
  readonly address: string;
  /** Sends a method call and waits for its reply, at most `timeoutMs`. */
  call(message: Message, timeoutMs: number): Promise<Message>;
  /** Calls a method of the bus driver (org.freedesktop.DBus) and returns the reply body. */
  driver(member: string, signature: string, body: unknown[], timeoutMs?: number): Promise<unknown[]>;
  /** Fires once when the connection ends (peer closed, error, or close()). */
  readonly events: EventEmitter<{ closed: [reason: string] }>;
  readonly isClosed: boolean;
  close(): void;
}

/** Why opening or using the bus failed; the caller wraps it into its own error class. */
export class BusFailure extends Error {
  readonly kind: 'connect' | 'timeout' | 'closed' | 'dbus';
  /** The D-Bus error name when the peer replied with an error. */
  readonly errorName: string | undefined;
  constructor(kind: BusFailure['kind'], message: string, errorName?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BusFailure';
    this.kind = kind;
    this.errorName = errorName;
  }
}

/** dbus-next's connection object: the only place it reports the stream's end. */
interface RawConnection {
  on(event: 'end', listener: () => void): void;
  stream: { destroy(): void };
}

const DEFAULT_CALL_TIMEOUT_MS = 25_000; // what libdbus uses for its default reply timeout

/**
 * Connects to `address` (a D-Bus address such as `unix:path=/run/dbus/system_bus_socket`),
 * or to the system bus when undefined (DBUS_SYSTEM_BUS_ADDRESS or the standard socket),
 * and waits for the bus's Hello reply.
 */
export async function openBus(address: string | undefined, timeoutMs = 10_000): Promise<BusConnection> {
  let bus: MessageBus;
  const shown = address ?? process.env.DBUS_SYSTEM_BUS_ADDRESS ?? 'unix:path=/var/run/dbus/system_bus_socket';
  try {
    bus = address === undefined ? dbus.systemBus() : dbus.sessionBus({ busAddress: address });
  } catch (e) {
    throw new BusFailure('connect', `Cannot connect to the bus at ${shown}: ${String(e)}`, undefined, {
      cause: e,
    });
  }
  const raw = (bus as unknown as { _connection: RawConnection })._connection;
  const events = new EventEmitter<{ closed: [reason: string] }>();
  const pending = new Set<(reason: string) => void>();
  let closed = false;
  const markClosed = (reason: string): void => {
    if (closed) return;
    closed = true;
    for (const fail of pending) fail(reason);
    pending.clear();
    events.emit('closed', reason);
  };
  // Errors after connecting (daemon gone, write after end) become "closed"; without a
  // listener EventEmitter would throw them.
  bus.on('error', (e: unknown) => markClosed(e instanceof Error ? e.message : String(e)));
  raw.on('end', () => markClosed('the bus closed the connection'));

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      markClosed('timeout');
      raw.stream.destroy();
      reject(
        new BusFailure('timeout', `Cannot connect to the bus at ${shown}: no reply within ${timeoutMs} ms`),
      );
    }, timeoutMs);
    const onClosed = (reason: string): void => {
      clearTimeout(timer);
      reject(new BusFailure('connect', `Cannot connect to the bus at ${shown}: ${reason}`));
    };
    events.once('closed', onClosed);
    bus.once('connect', () => {
      clearTimeout(timer);
      events.off('closed', onClosed);
      resolve();
    });
  });

  const call = (message: Message, ms: number): Promise<Message> => {
    if (closed) return Promise.reject(new BusFailure('closed', 'The bus connection is closed'));
    return new Promise<Message>((resolve, reject) => {
      const fail = (reason: string): void => {
        clearTimeout(timer);
        reject(new BusFailure('closed', `The bus connection closed during ${message.member}: ${reason}`));
      };
      const timer = setTimeout(() => {
        pending.delete(fail);
        reject(
          new BusFailure(
            'timeout',
            `No reply to ${message.member} within ${ms} ms`,
            'org.freedesktop.DBus.Error.NoReply',
          ),
        );
      }, ms);
      pending.add(fail);
      bus.call(message).then(
        (reply) => {
          clearTimeout(timer);
          pending.delete(fail);
          if (reply === null) reject(new BusFailure('dbus', `No reply to ${message.member}`));
          else resolve(reply);
        },
        (e: unknown) => {
          clearTimeout(timer);
          pending.delete(fail);
          const err = e as { type?: string; text?: string };
          reject(new BusFailure('dbus', err.text ?? String(e), err.type, { cause: e }));
        },
      );
    });
  };

  return {
    bus,
    uniqueName: (bus as unknown as { name: string }).name,
    address: shown,
    call,
    async driver(member, signature, body, ms = DEFAULT_CALL_TIMEOUT_MS) {
      const reply = await call(
        new dbus.Message({
          destination: 'org.freedesktop.DBus',
          path: '/org/freedesktop/DBus',
          interface: 'org.freedesktop.DBus',
          member,
          signature,
          body,
        }),
        ms,
      );
      return reply.body;
    },
    events,
    get isClosed() {
      return closed;
    },
    close() {
      if (closed) return;
      markClosed('closed by us');
      bus.disconnect();
    },
  };
}

/** The error every D-Bus piece of the agent throws: an AgentError (codes E_DBUS_…, doc/errors-agent.md). */
export function dbusError(
  code: AgentCode | CommonCode,
  message: string,
  options: MilkyWayErrorOptions = {},
): MilkyWayError {
  return new AgentError(code, message, options);
}
