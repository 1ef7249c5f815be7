// How `mway` shows a peer's CoreOS slots (doc/how-to-update.md, "Status"): which slot runs,
// the version on each and its state, the rollback floor, the health gate and why the last
// update was rolled back, from the agent's signed status (AgentStatus.coreos). Read
// defensively: a status is signed, not necessarily well formed.

export interface SlotsView {
  available?: boolean;
  reason?: string;
  running?: string;
  slots?: {
    slot: string;
    version: string | null;
    priority: number;
    tries: number;
    successful: boolean;
    bootable: boolean;
  }[];
  rollbackFloor?: number;
  trial?: { slot: string; version: string };
  lastGood?: { slot: string; version: string; at: string };
  lastRollback?: { slot: string; version: string; reason: string; at: string };
  gate?: { state: string; reason?: string };
}

export const coreosOf = (agent: unknown): SlotsView | undefined => {
  const c = (agent as { coreos?: unknown } | null | undefined)?.coreos;
  return typeof c === 'object' && c !== null && !Array.isArray(c) ? (c as SlotsView) : undefined;
};

/** good, `trial, N tries`, empty or bad. */
function slotState(s: NonNullable<SlotsView['slots']>[number]): string {
  if (s.successful) return 'good';
  if (s.bootable) return `trial, ${s.tries} tries`;
  return s.version === null ? 'empty' : 'bad';
}

/** `a* 1.0 (good, priority 2)  b 2.0 (bad, priority 0)`: the running slot starred. */
function slotsText(c: SlotsView, withPriority: boolean): string {
  return (Array.isArray(c.slots) ? c.slots : [])
    .map(
      (s) =>
        `${s.slot}${s.slot === c.running ? '*' : ''} ${s.version ?? '-'} (${slotState(s)}${withPriority ? `, priority ${s.priority}` : ''})`,
    )
    .join('  ');
}

/**
 * For `mway status`: `slots a* 1.0 (good)  b 2.0 (bad)`; undefined where the agent has no A/B
 * slots (a peer not on a MilkyWayLinux disk says so only in `mway update status`).
 */
export function coreosBrief(agent: unknown): string | undefined {
  const c = coreosOf(agent);
  if (c?.available !== true) return undefined;
  return `slots ${slotsText(c, false)}`;
}

/** `last rollback: 2.0 (slot b) at …: why`, or undefined when none was. */
export function lastRollbackLine(c: SlotsView | undefined): string | undefined {
  const r = c?.lastRollback;
  if (typeof r !== 'object' || r === null) return undefined;
  return `last rollback: ${r.version} (slot ${r.slot}) at ${r.at}: ${r.reason}`;
}

/** `mway update status`: a peer's slots in full, its armed trial and last rollback. */
export function slotLines(peer: string, c: SlotsView | undefined): string {
  if (c === undefined) return `${peer}: no slot information (an agent without A/B updates)`;
  if (c.available !== true) return `${peer}: A/B updates unavailable: ${c.reason ?? '?'}`;
  const lines = [
    `${peer}: running ${c.running ?? '?'}  ${slotsText(c, true)}  rollback floor ${c.rollbackFloor ?? 0}  gate ${c.gate?.state ?? '?'}`,
  ];
  if (c.trial !== undefined) lines.push(`  armed: ${c.trial.version} in slot ${c.trial.slot}`);
  const rb = lastRollbackLine(c);
  if (rb !== undefined) lines.push(`  ${rb}`);
  return lines.join('\n');
}
