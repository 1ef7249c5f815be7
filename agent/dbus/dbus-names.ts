// The agent's D-Bus surface in one place: bus name, object path, interface, the method
// table (signatures, and which methods change state), signals, error names and the
// introspection XML. The service, the client and the bus policy file all follow this.
// D-Bus specification: https://dbus.freedesktop.org/doc/dbus-specification.html

export const BUS_NAME = 'org.milkyway.Agent1';
export const OBJECT_PATH = '/org/milkyway/Agent1';
export const INTERFACE = 'org.milkyway.Agent1';
/** Errors the agent returns are `org.milkyway.Agent1.Error.<E_CODE>`; the code is the AgentApi's stable one. */
export const ERROR_PREFIX = `${INTERFACE}.Error.`;

export interface MethodSpec {
  /** Argument types, D-Bus signature. */
  readonly in: string;
  /** Reply type: '' (nothing) or 's' (a JSON document). */
  readonly out: string;
  /** Changes state: only root may call it (bus policy and the agent's own uid check). */
  readonly control: boolean;
}

// Structured replies are JSON strings ('s'): the records the AgentApi returns evolve
// together with the agent, and a JSON string keeps every client (dbus-send, busctl,
// ctl, scripts with jq) working without a signature change each time a field is added.
export const METHODS = {
  GetStatus: { in: '', out: 's', control: false },
  ListLayers: { in: '', out: 's', control: false },
  ListServices: { in: '', out: 's', control: false },
  GetService: { in: 's', out: 's', control: false },
  GetLogs: { in: 'su', out: 's', control: false },
  StartService: { in: 's', out: '', control: true },
  StopService: { in: 's', out: '', control: true },
  RestartService: { in: 's', out: '', control: true },
  InstallLayer: { in: 's', out: 's', control: true },
  RemoveLayer: { in: 's', out: '', control: true },
} as const satisfies Record<string, MethodSpec>;

export type MethodName = keyof typeof METHODS;

export function isMethodName(name: string): name is MethodName {
  return Object.hasOwn(METHODS, name);
}

/** Signals: a service's state changed (name, state); a layer was installed/removed/refused (name, event). */
export const SIGNALS = {
  ServiceChanged: 'ss',
  LayerChanged: 'ss',
} as const;

/** Largest number of log lines one GetLogs call returns (keeps a reply far below the bus's message limit). */
export const MAX_LOG_LINES = 10_000;

/** D-Bus error names we produce or interpret. */
export const DBUS_ERRORS = {
  accessDenied: 'org.freedesktop.DBus.Error.AccessDenied',
  serviceUnknown: 'org.freedesktop.DBus.Error.ServiceUnknown',
  nameHasNoOwner: 'org.freedesktop.DBus.Error.NameHasNoOwner',
  unknownMethod: 'org.freedesktop.DBus.Error.UnknownMethod',
  invalidArgs: 'org.freedesktop.DBus.Error.InvalidArgs',
  noReply: 'org.freedesktop.DBus.Error.NoReply',
  limitsExceeded: 'org.freedesktop.DBus.Error.LimitsExceeded',
} as const;

/** A stable E_… code → its D-Bus error name (codes are already valid name elements). */
export function errorNameOf(code: string): string {
  const safe = /^[A-Za-z_][A-Za-z0-9_]*$/.test(code) ? code : 'E_INTERNAL';
  return `${ERROR_PREFIX}${safe}`;
}

/** The E_… code inside one of our D-Bus error names, or undefined for foreign names. */
export function codeOfErrorName(name: string): string | undefined {
  return name.startsWith(ERROR_PREFIX) ? name.slice(ERROR_PREFIX.length) : undefined;
}

function methodXml(name: string, spec: MethodSpec): string {
  const args: string[] = [];
  const inNames: Record<string, readonly string[]> = {
    GetService: ['name'],
    GetLogs: ['name', 'lines'],
    StartService: ['name'],
    StopService: ['name'],
    RestartService: ['name'],
    InstallLayer: ['path'],
    RemoveLayer: ['name'],
  };
  const names = inNames[name] ?? [];
  [...spec.in].forEach((type, i) => {
    args.push(`      <arg name="${names[i] ?? `arg${i}`}" type="${type}" direction="in"/>`);
  });
  if (spec.out !== '') args.push(`      <arg name="json" type="${spec.out}" direction="out"/>`);
  return args.length === 0
    ? `    <method name="${name}"/>`
    : `    <method name="${name}">\n${args.join('\n')}\n    </method>`;
}

/** Introspection XML of OBJECT_PATH (org.freedesktop.DBus.Introspectable.Introspect). */
export const INTROSPECTION_XML = [
  '<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"',
  ' "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">',
  '<node>',
  '  <interface name="org.freedesktop.DBus.Introspectable">',
  '    <method name="Introspect">',
  '      <arg name="xml" type="s" direction="out"/>',
  '    </method>',
  '  </interface>',
  '  <interface name="org.freedesktop.DBus.Peer">',
  '    <method name="Ping"/>',
  '    <method name="GetMachineId">',
  '      <arg name="machine_uuid" type="s" direction="out"/>',
  '    </method>',
  '  </interface>',
  `  <interface name="${INTERFACE}">`,
  ...Object.entries(METHODS).map(([name, spec]) => methodXml(name, spec)),
  '    <signal name="ServiceChanged">',
  '      <arg name="name" type="s"/>',
  '      <arg name="state" type="s"/>',
  '    </signal>',
  '    <signal name="LayerChanged">',
  '      <arg name="name" type="s"/>',
  '      <arg name="event" type="s"/>',
  '    </signal>',
  '  </interface>',
  '</node>',
  '',
].join('\n');

/** Introspection XML of a parent of OBJECT_PATH ("/", "/org", "/org/milkyway"), so tools can walk down. */
export function parentIntrospectionXml(path: string): string | undefined {
  const parts = OBJECT_PATH.split('/').filter((p) => p !== '');
  const depth = path === '/' ? 0 : path.split('/').length - 1;
  const prefix = `/${parts.slice(0, depth).join('/')}`;
  if (depth >= parts.length || (depth > 0 && prefix !== path)) return undefined;
  return [
    '<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"',
    ' "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">',
    '<node>',
    `  <node name="${parts[depth]}"/>`,
    '</node>',
    '',
  ].join('\n');
}
