// How `milkyway-agent ctl` prints SELinux (doc/selinux.md, "Status"): the agent's mode, policy
// and denials on one line, and what the kernel says of a service beside the label it was given.
import type { SelinuxStatus, ServiceSelinux } from '../core/agent-api.ts';

/** The `selinux` of `status` on one line: mode, the loaded policy, denials, the agent's context. */
export function selinuxText(v: unknown): string {
  const s = v as SelinuxStatus;
  const parts: string[] = [s.mode];
  if (s.policy !== undefined)
    parts.push(
      `policy ${s.policy.version} (format ${s.policy.format}, ${s.policy.layers} layers) sha256 ${s.policy.sha256}`,
    );
  if (s.mode !== 'off')
    parts.push(`${s.denials} denials since boot${s.unseen ? ` (${s.unseen} audit records unseen)` : ''}`);
  if (s.context !== undefined) parts.push(`agent in ${s.context}`);
  return parts.join('; ');
}

/** What the kernel says of a running service beside its label: `agrees`, or the contexts it saw. */
export function kernelView(s: ServiceSelinux | undefined): string | undefined {
  if (s?.running === undefined) return undefined;
  return s.running.length === 1 && s.running[0] === s.context ? 'agrees' : s.running.join(',') || 'none';
}
