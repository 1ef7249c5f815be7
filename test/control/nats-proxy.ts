// A hostile NATS server for the tests: a TCP proxy on 127.0.0.1 in front of a real nats-server
// that reads the NATS client protocol both ways and tampers with the messages themselves — it
// duplicates, drops and reorders MSG/HMSG frames to the client and PUB/HPUB frames to the server
// by a fixed pattern (so a run is repeatable). Every other frame (INFO, CONNECT, PING, SUB, …)
// passes unchanged, so the connection stays up.
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import type { ExecutionContext } from 'ava';

export interface ProxyCounts {
  seen: number;
  duplicated: number;
  dropped: number;
  reordered: number;
}

/** What to do with the n-th message frame of one direction (n from 1). */
function fate(n: number): 'dup' | 'drop' | 'hold' | 'pass' {
  if (n % 7 === 0) return 'drop';
  if (n % 5 === 0) return 'hold';
  if (n % 3 === 0) return 'dup';
  return 'pass';
}

/**
 * Splits a NATS protocol byte stream into frames: a control line, and for MSG/HMSG/PUB/HPUB the
 * payload that follows it (its size is the line's last field) with its CRLF.
 */
function framer(onFrame: (frame: Buffer, isMessage: boolean) => void): (chunk: Buffer) => void {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      const eol = buf.indexOf('\r\n');
      if (eol < 0) return;
      const line = buf.subarray(0, eol).toString('latin1');
      const op = line.split(' ', 1)[0]?.toUpperCase() ?? '';
      if (op === 'MSG' || op === 'HMSG' || op === 'PUB' || op === 'HPUB') {
        const size = Number(line.trim().split(/\s+/).at(-1));
        const end = eol + 2 + size + 2;
        if (buf.length < end) return;
        onFrame(buf.subarray(0, end), true);
        buf = buf.subarray(end);
      } else {
        onFrame(buf.subarray(0, eol + 2), false);
        buf = buf.subarray(eol + 2);
      }
    }
  };
}

function tamper(to: Socket, counts: ProxyCounts): (chunk: Buffer) => void {
  let n = 0;
  let held: Buffer | undefined;
  return framer((frame, isMessage) => {
    if (!isMessage) {
      to.write(frame);
      return;
    }
    counts.seen++;
    const f = fate(++n);
    if (f === 'drop') {
      counts.dropped++;
      return;
    }
    if (f === 'hold' && held === undefined) {
      held = Buffer.from(frame);
      return;
    }
    to.write(frame);
    if (f === 'dup') {
      counts.duplicated++;
      to.write(frame);
    }
    if (held !== undefined) {
      // The held frame goes after the one behind it: the two arrive swapped.
      counts.reordered++;
      to.write(held);
      held = undefined;
    }
  });
}

/** Starts the proxy in front of `target` (`nats://127.0.0.1:port`); returns its own URL. */
export async function startNatsProxy(
  t: ExecutionContext,
  target: string,
): Promise<{ url: string; toClient: ProxyCounts; toServer: ProxyCounts }> {
  const { hostname, port } = new URL(target);
  const toClient: ProxyCounts = { seen: 0, duplicated: 0, dropped: 0, reordered: 0 };
  const toServer: ProxyCounts = { seen: 0, duplicated: 0, dropped: 0, reordered: 0 };
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = tcpConnect(Number(port), hostname);
    sockets.add(client).add(upstream);
    upstream.on('data', tamper(client, toClient));
    client.on('data', tamper(upstream, toServer));
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  const addr = server.address() as { port: number };
  return { url: `nats://127.0.0.1:${addr.port}`, toClient, toServer };
}
