// The agent as an SELinux object manager for its local API, as dbus-daemon is for the bus
// (doc/selinux.md, "The local API"): before each method the caller's context — the label
// dbus-daemon read from the caller's socket (SO_PEERSEC) when it connected — is checked with
// the loaded policy (security_compute_av, /sys/fs/selinux/access) for class
// `milkyway_agent_api`: `read` or `control` on the agent, or on the layer whose service a
// method names. A denial is logged as the kernel logs its own: a USER_AVC record through the
// audit netlink (agent/dbus/user-avc.c), which the kernel prints beside its AVCs.
import { existsSync } from 'node:fs';
import { run } from '../../common/index.ts';
import { type AccessDecision, computeAccess, ownContext, selinuxMode } from '../core/selinux-state.ts';
import type { MethodName } from './dbus-names.ts';
import { USER_AVC_HELPER } from './user-avc-build.ts';

/** The userspace class the agent checks (layers/selinux/base.cil). */
export const API_CLASS = 'milkyway_agent_api';

export type ApiPermission = 'read' | 'control';

/**
 * What each method asks for, and of whom: `agent` methods concern the whole machine (its
 * status, its layers), `service` methods one service, checked against its layer's context so
 * a layer reaches its own services and no other layer's. The `read` methods are exactly those
 * the bus policy file lets everyone call (test/agent/dbus/dbus-access.test.ts).
 */
export const METHOD_ACCESS: Record<MethodName, { perm: ApiPermission; target: 'agent' | 'service' }> = {
  GetStatus: { perm: 'read', target: 'agent' },
  ListLayers: { perm: 'read', target: 'agent' },
  ListServices: { perm: 'read', target: 'agent' },
  GetService: { perm: 'read', target: 'service' },
  GetLogs: { perm: 'read', target: 'service' },
  StartService: { perm: 'control', target: 'service' },
  StopService: { perm: 'control', target: 'service' },
  RestartService: { perm: 'control', target: 'service' },
  InstallLayer: { perm: 'control', target: 'agent' },
  RemoveLayer: { perm: 'control', target: 'agent' },
};

/** Who called, as dbus-daemon reports it (GetConnectionCredentials). */
export interface Caller {
  sender: string;
  uid: number;
  pid: number | undefined;
  /** The SELinux context of the caller's socket; undefined without SELinux. */
  context: string | undefined;
}

export interface ApiVerdict {
  allowed: boolean;
  /** The AVC text when the policy denied it (logged, permissive or not). */
  avc?: string;
}

/** Only characters a context or a bus name has: an AVC record's fields stay fields. */
function field(value: string): string {
  return value.replace(/[^A-Za-z0-9_.:,/@+-]/g, '?');
}

/** The record's text, in libselinux's avc_audit layout (what dbus-daemon logs for `dbus`). */
export function avcText(
  d: { perm: ApiPermission; member: MethodName; caller: Caller; tcontext: string },
  permissive: boolean,
): string {
  const pid = d.caller.pid === undefined ? '' : ` spid=${d.caller.pid}`;
  return (
    `avc:  denied  { ${d.perm} } for  member=${d.member} sender=${field(d.caller.sender)}${pid}` +
    ` scontext=${field(d.caller.context ?? '')} tcontext=${field(d.tcontext)} tclass=${API_CLASS}` +
    ` permissive=${permissive ? 1 : 0}`
  );
}

export interface ApiAccessOptions {
  selinuxfs?: string;
  /** The USER_AVC helper; missing → denials go to the agent's log only. */
  helper?: string;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

// Each denial costs PID 1 a short-lived process: a caller that floods denied calls gets its
// records dropped past this many in flight (and counted), as the kernel's audit backlog does.
const MAX_AUDITS_IN_FLIGHT = 4;

export interface ApiAccess {
  /** Whether SELinux is on (then every call is checked). */
  readonly enabled: boolean;
  check(
    caller: Caller,
    member: MethodName,
    tcontext: string | undefined,
  ): Promise<ApiVerdict & { perm: ApiPermission }>;
  /**
   * Whether the caller may `read` a service of context `tcontext` (the agent's when undefined),
   * asked silently: what a reply listing many services shows of each (ListServices, the
   * problems in GetStatus). Always true with SELinux off or permissive.
   */
  mayRead(caller: Caller, tcontext: string | undefined): boolean;
  /** The agent's own context: the target of `agent` methods. */
  readonly agentContext: string | undefined;
}

export function apiAccess(options: ApiAccessOptions): ApiAccess {
  const selinuxfs = options.selinuxfs;
  const agentContext = ownContext();
  const enabled = (selinuxfs === undefined ? selinuxMode() : selinuxMode(selinuxfs)) !== 'off';
  const helper = options.helper ?? USER_AVC_HELPER;
  let inFlight = 0;
  let dropped = 0;

  const audit = async (text: string): Promise<void> => {
    if (!existsSync(helper)) {
      options.log('warn', `D-Bus: SELinux denial not audited (no ${helper}): ${text.replace(/^avc: +/, '')}`);
      return;
    }
    if (inFlight >= MAX_AUDITS_IN_FLIGHT) {
      dropped++;
      return;
    }
    inFlight++;
    try {
      const r = await run(helper, [text], { timeout: 10_000, reject: false });
      if (r.exitCode !== 0) options.log('warn', `D-Bus: cannot audit a denial: ${r.stderr.trim()}`);
      if (dropped > 0) {
        options.log(
          'warn',
          `D-Bus: ${dropped} SELinux denials of the local API not audited (too many at once)`,
        );
        dropped = 0;
      }
    } finally {
      inFlight--;
    }
  };

  const decide = (scontext: string, tcontext: string, perm: ApiPermission): AccessDecision =>
    selinuxfs === undefined
      ? computeAccess(scontext, tcontext, API_CLASS, perm)
      : computeAccess(scontext, tcontext, API_CLASS, perm, selinuxfs);
  const permissiveMode = (): boolean =>
    (selinuxfs === undefined ? selinuxMode() : selinuxMode(selinuxfs)) === 'permissive';

  return {
    enabled,
    agentContext,
    mayRead(caller, tcontext) {
      if (!enabled) return true;
      const target = tcontext ?? agentContext;
      if (caller.context === undefined || target === undefined) return false;
      const d = decide(caller.context, target, 'read');
      return d.allowed || d.permissive || permissiveMode();
    },
    async check(caller, member, tcontext) {
      const { perm } = METHOD_ACCESS[member];
      if (!enabled) return { allowed: true, perm };
      const target = tcontext ?? agentContext;
      // SELinux on, but no label for the caller or the target: nothing to decide with, so
      // nothing is allowed (dbus-daemon, too, refuses a connection it cannot label).
      if (caller.context === undefined || target === undefined) return { allowed: false, perm };
      const decision = decide(caller.context, target, perm);
      if (decision.allowed) return { allowed: true, perm };
      const permissive = permissiveMode() || decision.permissive;
      const avc = avcText({ perm, member, caller, tcontext: target }, permissive);
      if (decision.audit) await audit(avc);
      return { allowed: permissive, avc, perm };
    },
  };
}
