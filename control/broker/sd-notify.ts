// Readiness for systemd (Type=notify): when systemd starts milkywaysrvd it sets NOTIFY_SOCKET,
// and the broker says READY=1 once it listens (and STOPPING=1 when it stops), so
// `systemctl start` returns only when operators and peers can connect. Node has no unix
// datagram sockets, so the message goes through systemd's own `systemd-notify` (Debian package
// systemd); the unit sets NotifyAccess=all because the datagram comes from that child.
// Without NOTIFY_SOCKET this does nothing.
import { run } from '../../common/index.ts';

/** Sends `state` lines (READY=1, STATUS=…, STOPPING=1) to the service manager, if there is one. */
export async function sdNotify(state: Readonly<Record<string, string>>): Promise<boolean> {
  const socket = process.env.NOTIFY_SOCKET;
  if (socket === undefined || socket === '') return false;
  const args = ['--no-block'];
  for (const [k, v] of Object.entries(state)) {
    if (k === 'READY' && v === '1') args.push('--ready');
    else if (k === 'STATUS') args.push(`--status=${v}`);
    else args.push(`${k}=${v}`);
  }
  await run('systemd-notify', args, { timeout: 10_000 });
  return true;
}
