// `mway status`: every peer's last signed status as the broker stored it, each signature
// checked here; with --group/--peer/--target it asks the peers now (a signed `status` command).
// Under a peer on a MilkyWayLinux disk: its CoreOS slots (which runs, the version on each) and
// why its last update was rolled back.
import { defineCommand } from 'citty';
import { output } from '../../../common/index.ts';
import type { Envelope } from '../../../keys/index.ts';
import { verifyStatus } from '../../wire/index.ts';
import { coreosBrief, coreosOf, lastRollbackLine } from './coreos-view.ts';
import { selinuxBrief, serviceDomain } from './selinux-view.ts';
import { runJob, targetArgs, withClient } from './shared.ts';

export default defineCommand({
  args: { ...targetArgs },
  run({ args }) {
    if (args.group !== undefined || args.peer !== undefined || args.target !== undefined)
      return runJob(args, 'status', {});
    return withClient(async (c) => {
      const rows = (await c.peers()).map((p) => {
        if (p.status === null || p.status === undefined)
          return { peer: p.peerId, online: p.online, status: 'none' };
        try {
          const s = verifyStatus(p.status as Envelope, { anchors: c.anchors, crls: c.crls }).payload;
          if (s.peer !== p.peerId) throw new Error('status of another peer');
          const agent = s.agent as {
            state?: string;
            services?: { running?: number; total?: number };
            selinux?: unknown;
          };
          return {
            peer: p.peerId,
            online: p.online,
            status: 'verified',
            at: s.at,
            state: agent.state,
            services: `${agent.services?.running ?? 0}/${agent.services?.total ?? 0}`,
            groups: s.groups,
            layers: s.layers,
            ...(agent.selinux === undefined ? {} : { selinux: agent.selinux }),
            ...(coreosOf(agent) === undefined ? {} : { coreos: coreosOf(agent) }),
            // Each service's state and, with SELinux on, its domain and category pair.
            units: Array.isArray(s.services) ? (s.services as unknown[]) : [],
          };
        } catch (e) {
          return { peer: p.peerId, online: p.online, status: 'INVALID', error: (e as Error).message };
        }
      });
      output(args.json, rows, () =>
        rows.length === 0
          ? 'no peers'
          : rows
              .flatMap((r) => {
                const selinux = 'state' in r ? selinuxBrief(r) : undefined;
                const line = [
                  r.peer.padEnd(20),
                  (r.online ? 'online' : 'offline').padEnd(8),
                  r.status.padEnd(9),
                  'state' in r
                    ? `${r.state ?? 'unknown'} services ${r.services} at ${r.at}${selinux === undefined ? '' : `; ${selinux}`}`
                    : 'error' in r
                      ? r.error
                      : '',
                ].join(' ');
                // Under a peer with SELinux on: one line per service, its domain and pair.
                const units = 'units' in r ? r.units : [];
                const slots = 'state' in r ? coreosBrief(r) : undefined;
                const rolledBack = 'coreos' in r ? lastRollbackLine(r.coreos) : undefined;
                return [
                  line,
                  ...(slots === undefined ? [] : [`  ${slots}`]),
                  ...(rolledBack === undefined ? [] : [`  ${rolledBack}`]),
                  ...units.flatMap((u) => {
                    const d = serviceDomain(u);
                    const { name, state } = u as { name?: unknown; state?: unknown };
                    return d === undefined
                      ? []
                      : [`  ${String(name).padEnd(30)} ${String(state).padEnd(9)} ${d.domain} ${d.level}`];
                  }),
                ];
              })
              .join('\n'),
      );
      return rows.every((r) => r.status === 'verified') ? 0 : 1;
    });
  },
});
