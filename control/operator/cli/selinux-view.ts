// How `mway` shows a peer's SELinux state (doc/selinux.md, "Status"): the mode, the loaded
// policy's version and digest and the denial count from the agent's signed status, and each
// service's domain and category pair. The shapes are the agent's (AgentStatus.selinux,
// ServiceInfo.selinux), read defensively: a status is signed, not necessarily well formed.

/** `enforcing, policy 1 sha256 0123456789abcdef…, 0 denials`, or undefined without a mode. */
export function selinuxBrief(agent: unknown): string | undefined {
  const s = (agent as { selinux?: Record<string, unknown> } | null)?.selinux;
  if (typeof s !== 'object' || s === null || typeof s.mode !== 'string') return undefined;
  const parts = [`selinux ${s.mode}`];
  const p = s.policy as { version?: unknown; sha256?: unknown } | undefined;
  if (typeof p === 'object' && p !== null)
    parts.push(
      `policy ${String(p.version)} sha256 ${typeof p.sha256 === 'string' ? `${p.sha256.slice(0, 16)}…` : '?'}`,
    );
  if (s.mode !== 'off')
    parts.push(
      `${String(s.denials ?? '?')} denials${typeof s.unseen === 'number' && s.unseen > 0 ? ` (${s.unseen} unseen)` : ''}`,
    );
  return parts.join(', ');
}

/** A service row's domain and level (`mway_web_t`, `s0:c0,c1`), or undefined without SELinux. */
export function serviceDomain(row: unknown): { domain: string; level: string } | undefined {
  const s = (row as { selinux?: { domain?: unknown; level?: unknown } } | null)?.selinux;
  if (typeof s?.domain !== 'string' || typeof s.level !== 'string') return undefined;
  return { domain: s.domain, level: s.level };
}
