// The receiving end of an sd_notify `NOTIFY_SOCKET` (a unix datagram socket). Node has no
// AF_UNIX datagram sockets, so a small Perl program (Debian's essential perl-base) binds
// the socket and prints each datagram as one line; the agent reads those lines.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { findTool } from '../../common/index.ts';
import { AgentError } from '../core/agent-error.ts';

const PERL = String.raw`use Socket; my $p = shift; unlink $p;
socket(my $s, PF_UNIX, SOCK_DGRAM, 0) or die "socket: $!\n";
bind($s, pack_sockaddr_un($p)) or die "bind $p: $!\n"; chmod 0666, $p; $| = 1; print "BOUND\n";
while (defined(recv($s, my $m, 65536, 0))) { $m =~ s/[\r\n]/\x1e/g; print "$m\n"; }`;

export interface NotifyListener {
  /** Host directory to bind at NOTIFY_DIR_IN_SANDBOX. */
  dir: string;
  /** Resolves on the first datagram containing READY=1. */
  ready: Promise<void>;
  /** The last STATUS= the service sent. */
  status(): string | undefined;
  close(): void;
}

export async function listenNotify(dir: string): Promise<NotifyListener> {
  const perl = await findTool('perl');
  if (perl === undefined) {
    throw new AgentError(
      'E_TOOL_MISSING',
      'Cannot receive sd_notify readiness: perl not found (install perl-base)',
    );
  }
  await mkdir(dir, { recursive: true, mode: 0o755 });
  // Long-running helper, so not common/exec.ts run(); it is killed in close().
  const child: ChildProcess = spawn(perl, ['-e', PERL, join(dir, 'notify.sock')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let status: string | undefined;
  let resolveReady: () => void = () => {};
  const ready = new Promise<void>((r) => {
    resolveReady = r;
  });
  let bound: () => void = () => {};
  let failed: (e: Error) => void = () => {};
  const boundP = new Promise<void>((res, rej) => {
    bound = res;
    failed = rej;
  });
  let buf = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    buf += chunk;
    let nl = buf.indexOf('\n');
    while (nl >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line === 'BOUND') bound();
      for (const field of line.split('\x1e')) {
        if (field === 'READY=1') resolveReady();
        else if (field.startsWith('STATUS=')) status = field.slice(7);
      }
      nl = buf.indexOf('\n');
    }
    if (buf.length > 1 << 16) buf = '';
  });
  child.stderr?.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-2000);
  });
  child.on('exit', () =>
    failed(new AgentError('E_NOTIFY_SOCKET', `Cannot bind notify socket in ${dir}: ${stderr.trim()}`)),
  );
  child.on('error', (e) => failed(e));
  await boundP;
  return {
    dir,
    ready,
    status: () => status,
    close: () => {
      child.kill('SIGKILL');
    },
  };
}
