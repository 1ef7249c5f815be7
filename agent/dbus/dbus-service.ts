// The agent's local API on D-Bus: owns org.milkyway.Agent1 at /org/milkyway/Agent1, turns
// method calls into AgentApi calls and the agent's change events into signals. Who may
// call what is decided by the bus policy (agent/dbus/org.milkyway.Agent1.conf) and again
// here, from the caller's credentials as the bus daemon reports them: its uid (control
// methods are root's), so a missing or edited policy file cannot open control to everyone,
// and with SELinux on its context, checked with the loaded policy before every method
// (dbus-access.ts), so a root service of a layer reaches no more than its domain may.
import dbus, { type Message } from 'dbus-next';
import { isMilkyWayError } from '../../common/index.ts';
import { type ApiAccess, apiAccess, type Caller, METHOD_ACCESS } from './dbus-access.ts';
import type { DbusAgentApi as AgentApi } from './dbus-api.ts';
import { type BusConnection, openBus } from './dbus-bus.ts';
import { agentChangeSignal } from './dbus-signals.ts';
import {
  BUS_NAME,
  DBUS_ERRORS,
  errorNameOf,
  INTERFACE,
  INTROSPECTION_XML,
  isMethodName,
  MAX_LOG_LINES,
  METHODS,
  type MethodName,
  OBJECT_PATH,
  parentIntrospectionXml,
} from './dbus-names.ts';

export type LogFn = (level: 'info' | 'warn' | 'error', message: string) => void;

export interface DbusServiceOptions {
  api: AgentApi;
  /** D-Bus address (`unix:path=…`); undefined → the system bus. */
  address?: string | undefined;
  log: LogFn;
  /** Uids allowed to call the control methods (default: root only). */
  controlUids?: readonly number[];
  /** The SELinux check (default: the running kernel's policy, when SELinux is on). */
  access?: ApiAccess;
}

export interface DbusService {
  stop(): Promise<void>;
}

// Layer names are one element; service names are `<service>` or `<layer>/<service>`.
const LAYER_RE = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/;
const SERVICE_RE = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}(?:\/[A-Za-z0-9][A-Za-z0-9._@+-]{0,127})?$/;
const MAX_PATH = 4096;
// Unique connection names are never reused while a bus runs, and a connection's credentials
// are those the bus read when it connected, so they can be cached; the cap only bounds
// memory when many short-lived clients call.
const CALLER_CACHE_MAX = 1024;
const RECONNECT_MAX_MS = 30_000;
// Anyone may call the read methods; a cap on calls in flight keeps a flood of GetLogs
// from piling up replies in PID 1's memory (the bus daemon bounds each connection too).
const MAX_IN_FLIGHT = 64;

class CallError extends Error {
  readonly errorName: string;
  constructor(errorName: string, message: string) {
    super(message);
    this.errorName = errorName;
  }
}

function jsonOf(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

function nameArg(value: unknown, what: 'service' | 'layer'): string {
  if (typeof value !== 'string' || !(what === 'layer' ? LAYER_RE : SERVICE_RE).test(value)) {
    throw new CallError(errorNameOf('E_DBUS_BAD_ARGUMENT'), `Invalid ${what} name: ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Runs one method against the AgentApi; returns the reply body. `mayRead` says which services'
 * details a reply listing many may show the caller (with SELinux on, those it may `read`:
 * another layer's services are left out of ListServices, and out of GetStatus's problems,
 * which carry their last output).
 */
async function dispatch(
  api: AgentApi,
  member: MethodName,
  body: unknown[],
  mayRead?: (context: string | undefined) => boolean,
): Promise<unknown[]> {
  switch (member) {
    case 'GetStatus': {
      const status = await api.status();
      if (mayRead === undefined) return [jsonOf(status)];
      const context = new Map((await api.listServices()).map((s) => [s.name, s.selinux?.context]));
      const problems = status.services.problems.filter((p) => mayRead(context.get(p.name)));
      return [jsonOf({ ...status, services: { ...status.services, problems } })];
    }
    case 'ListLayers':
      return [jsonOf(await api.listLayers())];
    case 'ListServices': {
      const services = await api.listServices();
      return [jsonOf(mayRead === undefined ? services : services.filter((s) => mayRead(s.selinux?.context)))];
    }
    case 'GetService': {
      const name = nameArg(body[0], 'service');
      return [jsonOf(await api.getService(name))];
    }
    case 'GetLogs': {
      const name = nameArg(body[0], 'service');
      const asked = typeof body[1] === 'number' ? body[1] : 0;
      const lines = asked === 0 || asked > MAX_LOG_LINES ? MAX_LOG_LINES : asked;
      return [jsonOf(await api.logs(name, { lines }))];
    }
    case 'StartService':
      await api.startService(nameArg(body[0], 'service'));
      return [];
    case 'StopService':
      await api.stopService(nameArg(body[0], 'service'));
      return [];
    case 'RestartService':
      await api.restartService(nameArg(body[0], 'service'));
      return [];
    case 'InstallLayer': {
      const path = body[0];
      if (
        typeof path !== 'string' ||
        !path.startsWith('/') ||
        path.length > MAX_PATH ||
        path.includes('\0')
      ) {
        throw new CallError(
          errorNameOf('E_DBUS_BAD_ARGUMENT'),
          `Invalid layer path: ${JSON.stringify(path)} (an absolute path is required)`,
        );
      }
      return [jsonOf(await api.installLayer(path))];
    }
    case 'RemoveLayer':
      await api.removeLayer(nameArg(body[0], 'layer'));
      return [];
  }
}

/** Attaches the object to one live connection; returns a detach function. */
function attach(conn: BusConnection, options: DbusServiceOptions): () => void {
  const { api, log } = options;
  const controlUids = new Set(options.controlUids ?? [0]);
  const access = options.access ?? apiAccess({ log });
  const callers = new Map<string, Caller>();

  // GetConnectionCredentials (D-Bus 1.10+): the uid, pid and, with an LSM, the socket's label
  // (SO_PEERSEC, NUL-terminated bytes) as dbus-daemon read them when the caller connected.
  const callerOf = async (sender: string): Promise<Caller> => {
    const cached = callers.get(sender);
    if (cached !== undefined) return cached;
    const [creds] = await conn.driver('GetConnectionCredentials', 's', [sender], 5_000);
    const value = (k: string): unknown =>
      (creds as Record<string, { value?: unknown } | undefined> | undefined)?.[k]?.value;
    const uid = value('UnixUserID');
    if (typeof uid !== 'number') throw new Error(`GetConnectionCredentials gave no UnixUserID for ${sender}`);
    const pid = value('ProcessID');
    const label = value('LinuxSecurityLabel');
    const context =
      label instanceof Uint8Array ? Buffer.from(label).toString('latin1').replace(/\0+$/, '') : undefined;
    const caller: Caller = {
      sender,
      uid,
      pid: typeof pid === 'number' ? pid : undefined,
      context: context === '' || context === 'unconfined' ? undefined : context,
    };
    if (callers.size >= CALLER_CACHE_MAX) callers.clear();
    callers.set(sender, caller);
    return caller;
  };

  // The object a method concerns, as a context: the agent's own, or the layer's whose service
  // it names (its domain and pair, as the agent runs it).
  const targetOf = async (member: MethodName, body: unknown[]): Promise<string | undefined> => {
    if (METHOD_ACCESS[member].target === 'agent') return undefined;
    const info = await api.getService(nameArg(body[0], 'service'));
    return info.selinux?.context;
  };

  const reply = (msg: Message, signature: string, body: unknown[]): void => {
    conn.bus.send(dbus.Message.newMethodReturn(msg, signature, body));
  };
  const replyError = (msg: Message, name: string, text: string): void => {
    // dbus-next types newError's first parameter as string; it takes the call message.
    conn.bus.send(dbus.Message.newError(msg as unknown as string, name, text));
  };

  const handleCall = async (msg: Message, member: MethodName): Promise<void> => {
    const spec = METHODS[member];
    if (msg.signature !== spec.in) {
      replyError(
        msg,
        DBUS_ERRORS.invalidArgs,
        `${member} takes arguments of type "${spec.in}", got "${msg.signature}"`,
      );
      return;
    }
    try {
      let mayRead: ((context: string | undefined) => boolean) | undefined;
      if (access.enabled) {
        const caller = await callerOf(msg.sender);
        mayRead = (context) => access.mayRead(caller, context);
        const verdict = await access.check(caller, member, await targetOf(member, msg.body));
        if (!verdict.allowed) {
          log(
            'warn',
            `D-Bus: SELinux refused ${member} (${verdict.perm}) to ${caller.context ?? 'an unlabelled caller'} (${msg.sender})`,
          );
          throw new CallError(
            errorNameOf('E_DBUS_ACCESS_DENIED'),
            `${member} is not allowed to ${caller.context ?? 'an unlabelled caller'} (SELinux: ${verdict.perm})`,
          );
        }
      }
      if (spec.control) {
        const { uid } = await callerOf(msg.sender);
        if (!controlUids.has(uid)) {
          log('warn', `D-Bus: refused ${member} from uid ${uid} (${msg.sender})`);
          throw new CallError(
            errorNameOf('E_DBUS_ACCESS_DENIED'),
            `${member} is only allowed to root (caller uid ${uid})`,
          );
        }
        log('info', `D-Bus: ${member}(${msg.body.map((b) => JSON.stringify(b)).join(', ')}) from uid ${uid}`);
      }
      const body = await dispatch(api, member, msg.body, mayRead);
      reply(msg, spec.out, body);
    } catch (e) {
      if (e instanceof CallError) replyError(msg, e.errorName, e.message);
      else if (isMilkyWayError(e)) replyError(msg, errorNameOf(e.code), e.message);
      else {
        // A bug in the agent: keep the details in its log, not on the bus.
        log('error', `D-Bus: ${member} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        replyError(msg, errorNameOf('E_INTERNAL'), `Internal error in the agent while running ${member}`);
      }
    }
  };

  let inFlight = 0;
  const handler = (msg: Message): boolean => {
    if (msg.type !== dbus.MessageType.METHOD_CALL) return false;
    if (msg.interface === 'org.freedesktop.DBus.Introspectable' && msg.member === 'Introspect') {
      const xml = msg.path === OBJECT_PATH ? INTROSPECTION_XML : parentIntrospectionXml(msg.path);
      if (xml === undefined) return false;
      reply(msg, 's', [xml]);
      return true;
    }
    if (msg.path !== OBJECT_PATH) return false;
    // A call without an interface is allowed by the spec; our member names are unique.
    if (msg.interface !== INTERFACE && !(msg.interface === undefined || msg.interface === '')) return false;
    if (!isMethodName(msg.member)) return false;
    if (inFlight >= MAX_IN_FLIGHT) {
      replyError(msg, DBUS_ERRORS.limitsExceeded, `Too many calls in progress (${MAX_IN_FLIGHT}); try again`);
      return true;
    }
    inFlight++;
    handleCall(msg, msg.member)
      .catch((e: unknown) => log('error', `D-Bus: reply failed: ${String(e)}`))
      .finally(() => {
        inFlight--;
      });
    return true;
  };
  conn.bus.addMethodHandler(handler);

  const unsubscribe = api.onChange((change) => {
    const signal = agentChangeSignal(change);
    if (signal === undefined || conn.isClosed) return;
    try {
      conn.bus.send(dbus.Message.newSignal(OBJECT_PATH, INTERFACE, signal.member, 'ss', signal.body));
    } catch (e) {
      log('warn', `D-Bus: cannot emit ${signal.member}: ${String(e)}`);
    }
  });

  return () => {
    unsubscribe();
    conn.bus.removeMethodHandler(handler);
  };
}

async function connectAndOwn(
  options: DbusServiceOptions,
): Promise<{ conn: BusConnection; detach: () => void }> {
  const conn = await openBus(options.address);
  try {
    // DO_NOT_QUEUE: a second agent must fail loudly rather than wait silently behind the first.
    const [result] = await conn.driver('RequestName', 'su', [BUS_NAME, dbus.NameFlag.DO_NOT_QUEUE]);
    if (result !== dbus.RequestNameReply.PRIMARY_OWNER && result !== dbus.RequestNameReply.ALREADY_OWNER) {
      throw new Error(`${BUS_NAME} is already owned by another connection`);
    }
  } catch (e) {
    conn.close();
    throw e;
  }
  const detach = attach(conn, options);
  return { conn, detach };
}

/**
 * Connects to the bus, owns org.milkyway.Agent1 and serves the AgentApi on it. Fails when
 * the bus is unreachable or the name is owned already (a second agent). If the bus goes
 * away later, reconnects with backoff until stop().
 */
export async function startDbusService(options: DbusServiceOptions): Promise<DbusService> {
  const { log } = options;
  let current = await connectAndOwn(options);
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;
  log('info', `D-Bus: serving ${BUS_NAME} on ${current.conn.address} as ${current.conn.uniqueName}`);

  const watch = (conn: BusConnection): void => {
    conn.events.once('closed', (reason) => {
      if (stopped) return;
      current.detach();
      log('warn', `D-Bus: lost the bus (${reason}); reconnecting`);
      let delay = 250;
      const retry = (): void => {
        retryTimer = undefined;
        if (stopped) return;
        connectAndOwn(options).then(
          (next) => {
            if (stopped) {
              next.detach();
              next.conn.close();
              return;
            }
            current = next;
            log('info', `D-Bus: serving ${BUS_NAME} again as ${next.conn.uniqueName}`);
            watch(next.conn);
          },
          (e: unknown) => {
            delay = Math.min(delay * 2, RECONNECT_MAX_MS);
            retryTimer = setTimeout(retry, delay);
            // The bus may be down for a while (restarting); say so once per attempt at debug-ish level.
            if (delay >= RECONNECT_MAX_MS) log('warn', `D-Bus: still cannot reconnect: ${String(e)}`);
          },
        );
      };
      retryTimer = setTimeout(retry, delay);
    });
  };
  watch(current.conn);

  return {
    async stop() {
      if (stopped) return;
      stopped = true;
      if (retryTimer !== undefined) clearTimeout(retryTimer);
      current.detach();
      if (!current.conn.isClosed) {
        try {
          await current.conn.driver('ReleaseName', 's', [BUS_NAME], 2_000);
        } catch {
          // The connection is going away anyway; closing it releases the name too.
        }
        current.conn.close();
      }
    },
  };
}
