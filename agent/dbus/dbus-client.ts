// Client of the agent's local D-Bus API (used by `milkyway-agent ctl`): one typed method
// per D-Bus method, JSON replies decoded, D-Bus errors turned back into MilkyWay errors
// with the agent's stable code.
import dbus from 'dbus-next';
import { type MilkyWayError, RemoteError } from '../../common/index.ts';
import { type BusConnection, BusFailure, dbusError, openBus } from './dbus-bus.ts';
import {
  BUS_NAME,
  codeOfErrorName,
  DBUS_ERRORS,
  INTERFACE,
  METHODS,
  type MethodName,
  OBJECT_PATH,
} from './dbus-names.ts';

export interface AgentSignal {
  member: 'ServiceChanged' | 'LayerChanged';
  name: string;
  /** The new state (ServiceChanged) or what happened (LayerChanged). */
  value: string;
}

export interface AgentClient {
  readonly address: string;
  status(): Promise<unknown>;
  listLayers(): Promise<unknown[]>;
  listServices(): Promise<unknown[]>;
  getService(name: string): Promise<unknown>;
  logs(name: string, lines?: number): Promise<unknown[]>;
  startService(name: string): Promise<void>;
  stopService(name: string): Promise<void>;
  restartService(name: string): Promise<void>;
  installLayer(path: string): Promise<unknown>;
  removeLayer(name: string): Promise<void>;
  /** Subscribes to ServiceChanged and LayerChanged; resolves once the bus has the match rule. */
  watch(listener: (signal: AgentSignal) => void): Promise<void>;
  close(): void;
}

export interface ConnectOptions {
  /** D-Bus address; undefined → the system bus. */
  address?: string | undefined;
  /** Reply timeout for reads (default 30 s); start/stop/restart/remove get 5 min, installs 10 min. */
  timeoutMs?: number;
}

// A stop waits for the service's own stop timeout and a start for its readiness timeout,
// both set by the manifest; give them room rather than report a failure that is not one.
const CONTROL_TIMEOUT_MS = 300_000;
const INSTALL_TIMEOUT_MS = 600_000;

function unreachable(message: string, cause?: unknown): MilkyWayError {
  return dbusError('E_DBUS_UNREACHABLE', message, {
    ...(cause === undefined ? {} : { cause }),
  });
}

/** A failed call as the error the CLI prints. */
function callError(member: string, e: unknown): MilkyWayError {
  if (!(e instanceof BusFailure))
    return dbusError('E_INTERNAL', `${member} failed: ${String(e)}`, { cause: e });
  const code = e.errorName === undefined ? undefined : codeOfErrorName(e.errorName);
  if (code === 'E_DBUS_ACCESS_DENIED') return dbusError(code, e.message, { cause: e });
  // The agent's own code (its table, or layers/' or keys/' for a refused install).
  if (code !== undefined) return new RemoteError(code, e.message, { cause: e });
  switch (e.errorName) {
    case DBUS_ERRORS.accessDenied:
      return dbusError(
        'E_DBUS_ACCESS_DENIED',
        `Permission denied: the bus policy does not allow you to call ${member}`,
        { cause: e },
      );
    case DBUS_ERRORS.serviceUnknown:
    case DBUS_ERRORS.nameHasNoOwner:
      return unreachable(`No agent on the bus: ${BUS_NAME} is not owned by anyone`, e);
    case DBUS_ERRORS.noReply:
      return dbusError('E_DBUS_TIMEOUT', `The agent did not answer ${member}: ${e.message}`, {
        cause: e,
      });
  }
  if (e.kind === 'closed') return unreachable(`Lost the bus during ${member}: ${e.message}`, e);
  return dbusError('E_DBUS_CALL', `${member} failed: ${e.errorName ?? ''} ${e.message}`.replace('  ', ' '), {
    cause: e,
  });
}

function parseJson(member: string, text: unknown): unknown {
  if (typeof text !== 'string') throw dbusError('E_DBUS_REPLY', `${member} returned no JSON document`);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw dbusError('E_DBUS_REPLY', `${member} returned invalid JSON: ${String(e)}`, { cause: e });
  }
}

function asArray(member: string, value: unknown): unknown[] {
  if (!Array.isArray(value))
    throw dbusError('E_DBUS_REPLY', `${member} returned ${typeof value}, expected a list`);
  return value;
}

export async function connectAgent(options: ConnectOptions = {}): Promise<AgentClient> {
  let conn: BusConnection;
  try {
    conn = await openBus(options.address, 10_000);
  } catch (e) {
    throw unreachable(e instanceof Error ? e.message : String(e), e);
  }
  const timeoutMs = options.timeoutMs ?? 30_000;

  const call = async (member: MethodName, body: unknown[], ms = timeoutMs): Promise<unknown> => {
    const spec = METHODS[member];
    let reply: dbus.Message;
    try {
      reply = await conn.call(
        new dbus.Message({
          destination: BUS_NAME,
          path: OBJECT_PATH,
          interface: INTERFACE,
          member,
          signature: spec.in,
          body,
        }),
        ms,
      );
    } catch (e) {
      throw callError(member, e);
    }
    return spec.out === '' ? undefined : parseJson(member, reply.body[0]);
  };

  return {
    address: conn.address,
    status: () => call('GetStatus', []),
    listLayers: async () => asArray('ListLayers', await call('ListLayers', [])),
    listServices: async () => asArray('ListServices', await call('ListServices', [])),
    getService: (name) => call('GetService', [name]),
    logs: async (name, lines = 0) => asArray('GetLogs', await call('GetLogs', [name, lines])),
    startService: async (name) => {
      await call('StartService', [name], Math.max(timeoutMs, CONTROL_TIMEOUT_MS));
    },
    stopService: async (name) => {
      await call('StopService', [name], Math.max(timeoutMs, CONTROL_TIMEOUT_MS));
    },
    restartService: async (name) => {
      await call('RestartService', [name], Math.max(timeoutMs, CONTROL_TIMEOUT_MS));
    },
    installLayer: (path) => call('InstallLayer', [path], Math.max(timeoutMs, INSTALL_TIMEOUT_MS)),
    removeLayer: async (name) => {
      await call('RemoveLayer', [name], Math.max(timeoutMs, CONTROL_TIMEOUT_MS));
    },
    async watch(listener) {
      // Any connection may send a signal with our path and interface; only the name's
      // owner is the agent.
      let owner: unknown;
      try {
        [owner] = await conn.driver('GetNameOwner', 's', [BUS_NAME]);
        await conn.driver('AddMatch', 's', [
          `type='signal',sender='${BUS_NAME}',path='${OBJECT_PATH}',interface='${INTERFACE}'`,
        ]);
      } catch (e) {
        throw callError('AddMatch', e);
      }
      conn.bus.on('message', (msg: dbus.Message) => {
        if (msg.type !== dbus.MessageType.SIGNAL || msg.sender !== owner) return;
        if (msg.path !== OBJECT_PATH || msg.interface !== INTERFACE) return;
        if (msg.member !== 'ServiceChanged' && msg.member !== 'LayerChanged') return;
        const [name, value] = msg.body;
        if (typeof name !== 'string' || typeof value !== 'string') return;
        listener({ member: msg.member, name, value });
      });
    },
    close: () => conn.close(),
  };
}
