// `mway update --group G BUNDLE [--no-reboot]`: an A/B CoreOS update (doc/how-to-update.md).
// The vendor-signed bundle travels as signed `coreos.chunk` pieces, then one `coreos.update`
// bound to its digest; each peer verifies it for itself (signature, newer version, rollback
// floor, every verity block), writes only its inactive slot, arms one trial boot and reboots
// unless --no-reboot. `mway update status [--group G]`: the slots of each peer, from signed
// statuses — which runs, what each holds, the rollback floor, why the last update rolled back.
// `mway update --rollback --group G [--no-reboot]`: each peer boots its other, known-good slot
// next (signed `coreos.rollback`; refused by a peer whose other slot is not bootable or is below
// its rollback floor). `mway update --cancel --group G`: each peer abandons an update in
// progress — pieces spooled, a write under way, or a slot armed but not yet booted.
// With --batch (and a reboot): a rollout that waits, batch by batch, for each peer's health gate
// after its reboot and stops at --max-fail (update-rollout.ts).
import { readFile, stat } from 'node:fs/promises';
import { defineCommand } from 'citty';
import { createProgress, EXIT_FAIL, EXIT_OK, output, progressArgs } from '../../../common/index.ts';
import type { Envelope } from '../../../keys/index.ts';
import { verifyStatus } from '../../wire/index.ts';
import { usageError } from '../operator-error.ts';
import { sendInPieces } from '../operator-client.ts';
import { coreosOf, type SlotsView as Slots, slotLines } from './coreos-view.ts';
import { rollout } from './update-rollout.ts';
import { finish, jsonMode, runJob, type TargetFlags, targetArgs, targetOf, withClient } from './shared.ts';

async function status(args: TargetFlags): Promise<number> {
  const targeted = args.group !== undefined || args.peer !== undefined || args.target !== undefined;
  return withClient(async (c) => {
    let rows: { peer: string; coreos?: Slots; error?: string }[];
    if (targeted) {
      const r = await c.run({ action: 'status', target: targetOf(args), timeoutMs: 60_000 });
      rows = r.peers.map((p) =>
        p.outcome === 'ok'
          ? {
              peer: p.peer,
              ...(coreosOf((p.output as { agent?: unknown }).agent) === undefined
                ? {}
                : { coreos: coreosOf((p.output as { agent?: unknown }).agent) as Slots }),
            }
          : { peer: p.peer, error: `${p.outcome}${p.code === undefined ? '' : ` ${p.code}`}` },
      );
    } else {
      rows = (await c.peers()).map((p) => {
        if (p.status === null || p.status === undefined) return { peer: p.peerId, error: 'no status yet' };
        try {
          const s = verifyStatus(p.status as Envelope, { anchors: c.anchors, crls: c.crls }).payload;
          const co = coreosOf(s.agent);
          return { peer: p.peerId, ...(co === undefined ? {} : { coreos: co }) };
        } catch (e) {
          return { peer: p.peerId, error: `INVALID status: ${(e as Error).message}` };
        }
      });
    }
    output(args.json, rows, () =>
      rows.length === 0
        ? 'no peers'
        : rows
            .map((r) => (r.error !== undefined ? `${r.peer}: ${r.error}` : slotLines(r.peer, r.coreos)))
            .join('\n'),
    );
    return rows.every((r) => r.error === undefined) ? EXIT_OK : EXIT_FAIL;
  });
}

export default defineCommand({
  args: {
    ...targetArgs,
    ...progressArgs,
    bundle: {
      type: 'positional',
      required: false,
      description: 'Update bundle (.mwu), or `status`; none with --rollback or --cancel',
    },
    rollback: {
      type: 'boolean',
      description: 'Boot the other, known-good slot next (then reboot, unless --no-reboot)',
    },
    cancel: {
      type: 'boolean',
      description:
        'Abandon an update in progress: pieces sent, a write under way, a slot armed but not booted',
    },
    'downgrade-permit': {
      type: 'string',
      description:
        'A user-signed permit for this bundle (mway-image bundle permit): lets peers install it although it is not newer than what they run',
    },
    'gate-timeout': {
      type: 'string',
      description:
        'With --batch: seconds each batch gets to reboot and pass its health gates (default 900); a peer not back by then counts as failed',
    },
    // citty reads --no-reboot as reboot=false.
    reboot: {
      type: 'boolean',
      default: true,
      description: 'Reboot into the new slot once written (--no-reboot: arm it, boot it at the next reboot)',
    },
  },
  async run({ args }) {
    const verbs = [args.bundle !== undefined, args.rollback === true, args.cancel === true];
    if (verbs.filter(Boolean).length !== 1)
      throw usageError('mway update takes one of: a bundle, `status`, --rollback, --cancel');
    if (args.rollback === true) return runJob(args, 'coreos.rollback', { reboot: args.reboot !== false });
    if (args.cancel === true) {
      if (args.reboot === false)
        throw usageError('--no-reboot goes with a bundle or --rollback, not --cancel');
      return runJob(args, 'coreos.cancel', {});
    }
    const file = args.bundle;
    if (file === undefined) throw usageError('mway update needs a bundle');
    if (file === 'status') return status(args);
    const size = (await stat(file).catch(() => undefined))?.size;
    if (size === undefined) throw usageError(`Cannot read update bundle ${file}`);
    if (args.async === true) throw usageError('--async: a bundle is sent in pieces, each must arrive first');
    const target = targetOf(args);
    const json = jsonMode(args);
    const timeout = args.timeout === undefined ? 600 : Number(args.timeout);
    if (!(timeout > 0 && timeout <= 86_400)) throw usageError('--timeout must be 1..86400 seconds');
    let permit: unknown;
    if (args['downgrade-permit'] !== undefined) {
      const text = await readFile(args['downgrade-permit'], 'utf8').catch(() => undefined);
      if (text === undefined) throw usageError(`Cannot read downgrade permit ${args['downgrade-permit']}`);
      try {
        permit = JSON.parse(text);
      } catch {
        throw usageError(`Downgrade permit ${args['downgrade-permit']} is not JSON`);
      }
    }
    // The peers check the permit: with its bundle's head on the first piece, and again at install.
    const headExtra = permit === undefined ? {} : { permit };
    const extra = { reboot: args.reboot !== false, ...headExtra };
    const progress = createProgress({ json: args.json, quiet: args.quiet });
    const gated = args.batch !== undefined && args.reboot !== false && args['dry-run'] !== true;
    const gateTimeout = args['gate-timeout'] === undefined ? 900 : Number(args['gate-timeout']);
    if (args['gate-timeout'] !== undefined && !gated)
      throw usageError('--gate-timeout goes with --batch and a reboot');
    if (!(gateTimeout > 0 && gateTimeout <= 86_400))
      throw usageError('--gate-timeout must be 1..86400 seconds');
    if (gated)
      return withClient(async (c) => {
        const r = await rollout(c, file, {
          target,
          batch: args.batch as string,
          maxFail: args['max-fail'],
          timeoutMs: timeout * 1000,
          gateTimeoutMs: gateTimeout * 1000,
          extra,
          headExtra,
          onBatch: (n, of, peers) =>
            progress.step(`batch ${n}/${of} (${peers.join(', ')}): sending ${file} in pieces`),
          onSent: (done, total) => {
            progress.bytes(done, total);
            if (done === total)
              progress.step('waiting for the peers to write the slot, reboot and pass their gates');
          },
          onGate: (peer, g) =>
            progress.step(`${peer}: health gate ${g.state}${g.state === 'failed' ? `: ${g.reason}` : ''}`),
        });
        progress.done();
        return finish(r, json);
      });
    return withClient(async (c) => {
      progress.step(`sending ${file} in pieces`);
      const r = await sendInPieces(
        c,
        file,
        {
          target,
          ...(args.batch === undefined ? {} : { batch: args.batch }),
          ...(args['max-fail'] === undefined ? {} : { maxFail: args['max-fail'] }),
          timeoutMs: timeout * 1000,
          dryRun: args['dry-run'] === true,
        },
        {
          chunk: 'coreos.chunk',
          final: 'coreos.update',
          extra,
          headExtra,
          onSent: (done, total) => {
            progress.bytes(done, total);
            if (done === total) progress.step('waiting for the peers to verify and write the inactive slot');
          },
        },
      );
      progress.done();
      return finish(r, json);
    });
  },
});
