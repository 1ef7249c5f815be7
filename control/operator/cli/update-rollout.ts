// `mway update --batch N|P% [--max-fail N|P%] BUNDLE`: a rollout that waits for each batch's
// health gates (doc/how-to-update.md, "Roll out in batches"). A peer's `coreos.update` result
// only says the slot was written and the reboot begun; whether the new slot is any good is
// known after the reboot, from the peer's signed status: the slot it runs, and the state stage
// 1 and the agent left on the GPT. So each batch gets the bundle, then the operator asks its
// peers for their status until every one has passed its gate, failed it, or run out of time;
// once more peers failed than --max-fail allows, the peers not yet started are left alone
// (Bottlerocket's update operator and Flatcar's locksmith wait the same way, one node's reboot
// at a time). Only the peers' signed answers count: the broker cannot pass a peer off as good.
import type { JobReport, OperatorClient, PeerReport } from '../operator-client.ts';
import { sendInPieces } from '../operator-client.ts';
import { batchSize, failBudget, parseTarget, resolveTarget, usesFacts } from '../targets.ts';
import { coreosOf, type SlotsView } from './coreos-view.ts';

export type GateOutcome = { state: 'pending' } | { state: 'passed' } | { state: 'failed'; reason: string };

/**
 * What a peer's slots say of the update that wrote `version` into `slot`: passed once it runs
 * that slot marked successful; failed once that slot can no longer boot while another runs
 * (stage 1 spent its try, or the gate marked it bad), or it runs it with its gate failed (the
 * degraded case, nothing to fall back to); else pending (not rebooted yet, booting, in the gate).
 */
export function gateOutcome(
  c: SlotsView | undefined,
  written: { slot: string; version: string },
): GateOutcome {
  if (c?.available !== true || !Array.isArray(c.slots)) return { state: 'pending' };
  const s = c.slots.find((x) => x.slot === written.slot);
  if (s === undefined) return { state: 'pending' };
  const why = () =>
    c.lastRollback?.version === written.version && c.lastRollback.slot === written.slot
      ? c.lastRollback.reason
      : `slot ${written.slot} (${written.version}) cannot boot: priority ${s.priority}, tries ${s.tries}`;
  if (c.running === written.slot) {
    if (s.successful && s.version === written.version) return { state: 'passed' };
    if (c.gate?.state === 'failed') return { state: 'failed', reason: c.gate.reason ?? why() };
    return { state: 'pending' };
  }
  // Still the old slot: either not rebooted yet (the new one armed) or fallen back from it.
  if (s.bootable || s.version !== written.version) return { state: 'pending' };
  return { state: 'failed', reason: why() };
}

export interface RolloutOptions {
  target: string;
  batch: string;
  maxFail: string | undefined;
  timeoutMs: number;
  /** How long one batch's peers get to come back and pass their gates. */
  gateTimeoutMs: number;
  /** Between two status rounds. */
  pollMs?: number;
  extra: Record<string, unknown>;
  headExtra?: Record<string, unknown>;
  onSent?: (done: number, total: number) => void;
  onBatch?: (n: number, of: number, peers: readonly string[]) => void;
  onGate?: (peer: string, g: GateOutcome) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The peers `target` names, resolved as `run` resolves them (facts from verified statuses). */
async function resolvePeers(c: OperatorClient, target: string): Promise<string[]> {
  const fleet = await c.peers();
  const withFacts = usesFacts(parseTarget(target));
  return resolveTarget(
    target,
    fleet.map((p) => ({
      id: p.peerId,
      groups: p.groups ?? [],
      labels: p.labels ?? {},
      ...(withFacts ? { facts: c.verifiedFacts(p) } : {}),
    })),
  ).peers;
}

/** Asks `peers` for their signed status until each gate is decided or `deadline` passes. */
async function waitForGates(
  c: OperatorClient,
  written: Map<string, { slot: string; version: string }>,
  deadline: number,
  o: RolloutOptions,
): Promise<Map<string, GateOutcome | undefined>> {
  const decided = new Map<string, GateOutcome | undefined>();
  while (decided.size < written.size && Date.now() < deadline) {
    const online = new Set((await c.peers()).filter((p) => p.online).map((p) => p.peerId));
    // A rebooting peer is offline: ask only those connected, so no status piles up for it.
    const ask = [...written.keys()].filter((p) => !decided.has(p) && online.has(p));
    if (ask.length > 0) {
      const r = await c.run({
        action: 'status',
        target: ask.map((p) => `peer:${p}`).join(','),
        timeoutMs: 15_000,
        ttlMs: 30_000,
      });
      for (const p of r.peers) {
        if (p.outcome !== 'ok') continue;
        const g = gateOutcome(
          coreosOf((p.output as { agent?: unknown } | undefined)?.agent),
          written.get(p.peer) as { slot: string; version: string },
        );
        if (g.state === 'pending') continue;
        decided.set(p.peer, g);
        o.onGate?.(p.peer, g);
      }
    }
    if (decided.size < written.size) await sleep(o.pollMs ?? 2000);
  }
  for (const p of written.keys()) if (!decided.has(p)) decided.set(p, undefined);
  return decided;
}

/** The whole rollout; one row per peer, in the order the batches went. */
export async function rollout(c: OperatorClient, file: string, o: RolloutOptions): Promise<JobReport> {
  const peers = await resolvePeers(c, o.target);
  const size = batchSize(o.batch, peers.length);
  const budget = failBudget(o.maxFail, peers.length);
  const batches: string[][] = [];
  for (let i = 0; i < peers.length; i += size) batches.push(peers.slice(i, i + size));
  const rows: PeerReport[] = [];
  let failed = 0;
  let jobId = '';
  for (const [i, batch] of batches.entries()) {
    if (failed > budget) {
      for (const peer of batch)
        rows.push({
          peer,
          outcome: 'skipped',
          code: 'E_ROLLOUT_STOPPED',
          message: `not started: ${failed} peer(s) failed, more than --max-fail ${o.maxFail ?? budget} allows`,
        });
      continue;
    }
    o.onBatch?.(i + 1, batches.length, batch);
    const r = await sendInPieces(
      c,
      file,
      { target: batch.map((p) => `peer:${p}`).join(','), timeoutMs: o.timeoutMs },
      {
        chunk: 'coreos.chunk',
        final: 'coreos.update',
        extra: o.extra,
        ...(o.headExtra === undefined ? {} : { headExtra: o.headExtra }),
        ...(o.onSent ? { onSent: o.onSent } : {}),
      },
    );
    jobId = r.jobId;
    const written = new Map<string, { slot: string; version: string }>();
    const results = new Map(r.peers.map((p) => [p.peer, p]));
    for (const peer of batch) {
      const p = results.get(peer) ?? { peer, outcome: 'no answer' as const };
      const out = p.output as { slot?: unknown; version?: unknown } | undefined;
      if (p.outcome === 'ok' && typeof out?.slot === 'string' && typeof out.version === 'string')
        written.set(peer, { slot: out.slot, version: out.version });
      else if (p.outcome === 'ok')
        // It stored a piece, but the send stopped at a piece another peer of the batch refused:
        // this one was never told to install, and did not fail anything.
        rows.push({
          peer,
          outcome: 'skipped',
          code: 'E_ROLLOUT_STOPPED',
          message: 'not updated: a piece of the bundle failed on another peer of its batch',
        });
      else {
        rows.push(p);
        failed++;
      }
    }
    const gates = await waitForGates(c, written, Date.now() + o.gateTimeoutMs, o);
    for (const [peer, g] of gates) {
      const p = results.get(peer) as PeerReport;
      if (g?.state === 'passed') rows.push({ ...p, output: { ...(p.output as object), gate: 'passed' } });
      else {
        failed++;
        rows.push({
          peer,
          outcome: 'failed',
          ...(g === undefined
            ? {
                code: 'E_UPDATE_GATE_TIMEOUT',
                message: `no signed status with the health gate decided within ${Math.round(o.gateTimeoutMs / 1000)} s`,
              }
            : { code: 'E_UPDATE_GATE_FAILED', message: g.state === 'failed' ? g.reason : '' }),
          ...(p.output === undefined ? {} : { output: p.output }),
        });
      }
    }
  }
  const ok = rows.filter((p) => p.outcome === 'ok').length;
  return {
    jobId,
    action: 'coreos.update',
    target: o.target,
    peers: rows,
    summary: {
      targeted: peers.length,
      succeeded: ok,
      failed: rows.filter((p) => p.outcome === 'failed' || p.outcome === 'refused').length,
      noAnswer: rows.filter((p) => p.outcome === 'no answer' || p.outcome === 'skipped').length,
    },
  };
}
