// `mway jobs` and `mway job ID`: jobs the broker holds; `job` re-verifies every result.
import { defineCommand } from 'citty';
import { commonArgs, EXIT_FAIL, EXIT_OK, output } from '../../../common/index.ts';
import { usageError } from '../operator-error.ts';
import { finish, withClient } from './shared.ts';

export const jobs = defineCommand({
  args: {
    ...commonArgs,
    limit: { type: 'string', numeric: 'integer', description: 'How many (default 50)' },
  },
  run: ({ args }) =>
    withClient(async (c) => {
      const list = (await c.jobs(args.limit === undefined ? 50 : Number(args.limit))) as Array<
        Record<string, unknown>
      >;
      output(args.json, list, () =>
        list.length === 0
          ? 'no jobs'
          : list
              .map((j) =>
                [
                  String(j.jobId),
                  String(j.action ?? '?').padEnd(14),
                  String(j.target ?? '?').padEnd(20),
                  `${j.targeted ?? 0} targeted, ${j.succeeded ?? 0} ok, ${j.failed ?? 0} failed, ${j.pending ?? 0} pending${Number(j.cancelled ?? 0) > 0 ? `, ${j.cancelled} cancelled` : ''}`.padEnd(
                    44,
                  ),
                  `${age(String(j.created))} ago`,
                ].join('  '),
              )
              .join('\n'),
      );
      return 0;
    }),
});

export const job = defineCommand({
  args: {
    ...commonArgs,
    id: {
      type: 'positional',
      required: true,
      description: 'Job id (a unique prefix is enough), or `cancel`',
    },
    job: { type: 'positional', required: false, description: 'With `cancel`: the job to cancel' },
    timeout: { type: 'string', description: 'With `cancel`: seconds to wait for the peers (default 10)' },
  },
  run: ({ args }) =>
    withClient(async (c) => {
      if (args.id !== 'cancel')
        return finish(await c.job(await c.resolveJobId(args.id)), args.json === true ? 'static' : undefined);
      const target = (args._ ?? []).map(String)[1];
      if (target === undefined) throw usageError('mway job cancel needs a job id');
      const s = args.timeout === undefined ? 10 : Number(args.timeout);
      if (!(s > 0 && s <= 86_400)) throw usageError('--timeout must be 1..86400 seconds');
      const r = await c.cancel(await c.resolveJobId(target), { timeoutMs: s * 1000 });
      const ok = r.peers.every((p) => p.outcome === 'cancelled' || p.outcome === 'held back');
      output(args.json, { ...r, cancelled: ok }, () =>
        r.peers.length === 0
          ? `job ${r.jobId}: nothing left to cancel (every peer answered or the job expired)`
          : [
              ...r.peers.map((p) => {
                if (p.outcome === 'held back')
                  return `${p.peer}: held back (offline; the signed cancellation waits for it and is applied before the command can run — the TLS broker holds the command back, a NATS peer reads the cancellation ahead in its mailbox)`;
                if (p.outcome === 'already received')
                  return `${p.peer}: NOT cancelled: it had the command already`;
                return `${p.peer}: ${p.outcome}${p.code === undefined ? '' : ` ${p.code}: ${p.message ?? ''}`}`;
              }),
              `job ${r.jobId}: ${r.peers.filter((p) => p.outcome === 'cancelled' || p.outcome === 'held back').length} of ${r.peers.length} open deliveries cancelled (cancellation ${r.cancelJobId})`,
            ].join('\n'),
      );
      return ok ? EXIT_OK : EXIT_FAIL;
    }),
});

/** `3s`, `5m`, `2h`, `4d`: how long ago an ISO time was. */
function age(iso: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (!Number.isFinite(s)) return '?';
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}
