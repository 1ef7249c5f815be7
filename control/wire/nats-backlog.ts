// The order in which a NATS peer hands the messages it read ahead from its mailbox to the link
// (doc/nats.md, "Cancelling a job"). A command stored in a mailbox cannot be withdrawn (the
// streams deny deletes), so `mway job cancel` stores its signed `job.cancel` behind it; a peer
// that was offline reads both in one backlog. Handed in stream order, the command would be
// admitted before the cancellation claims its id. So a cancellation whose command is earlier in
// the same backlog goes just before that command, alone: after the link answered everything
// handed before it (a membership it needs may be among them), and with its own answer awaited
// before the command is handed. Only the order changes: every message is still checked in full
// by the executor, and the peek at an unverified action and id only picks the order.
import type { Message } from './protocol.ts';

export interface BacklogItem {
  /** The message's sequence in the commands stream. */
  seq: number;
  msg: Message;
}

export interface HandOutStep {
  item: BacklogItem;
  /** A cancellation moved ahead of the command it cancels: handed alone (see above). */
  alone: boolean;
}

interface Peeked {
  payload?: { id?: unknown; action?: unknown; args?: { job?: unknown } };
}

/** The command id a `command-deliver` carries (unverified), if any. */
function commandId(m: Message): string | undefined {
  if (m.kind !== 'command-deliver') return undefined;
  const id = (m.command as Peeked | undefined)?.payload?.id;
  return typeof id === 'string' ? id : undefined;
}

/** The command id a delivered `job.cancel` names (unverified), if it is one. */
export function cancelTarget(m: Message): string | undefined {
  if (m.kind !== 'command-deliver') return undefined;
  const p = (m.command as Peeked | undefined)?.payload;
  if (p?.action !== 'job.cancel') return undefined;
  const job = p.args?.job;
  return typeof job === 'string' ? job : undefined;
}

/**
 * `items` (stream order) in the order to hand them out: each cancellation whose command comes
 * earlier in `items` moves to just before it, marked `alone`; everything else keeps its order.
 */
export function handOutOrder(items: readonly BacklogItem[]): HandOutStep[] {
  const firstIndex = new Map<string, number>();
  items.forEach((it, i) => {
    const id = commandId(it.msg);
    if (id !== undefined && !firstIndex.has(id)) firstIndex.set(id, i);
  });
  /** By index of a command: the cancellations moved before it, in their own order. */
  const movedBefore = new Map<number, BacklogItem[]>();
  const moved = new Set<number>();
  items.forEach((it, j) => {
    const target = cancelTarget(it.msg);
    const i = target === undefined ? undefined : firstIndex.get(target);
    if (i === undefined || i >= j) return;
    movedBefore.set(i, [...(movedBefore.get(i) ?? []), it]);
    moved.add(j);
  });
  const out: HandOutStep[] = [];
  items.forEach((it, i) => {
    for (const c of movedBefore.get(i) ?? []) out.push({ item: c, alone: true });
    if (!moved.has(i)) out.push({ item: it, alone: false });
  });
  return out;
}
