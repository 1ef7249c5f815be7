// A scripted broker for peer-link tests: a real TLS 1.3 listener (control/wire/transport.ts) with
// the broker identity, that answers `hello` and lets the test send any frame it likes to the
// connected peer — a faithful relay or a hostile one (tampering, retargeting, replaying,
// delaying, inventing memberships). It records every frame the peer sends back.
import { tlsContextOptions } from '../../../keys/index.ts';
import type { Message } from '../../../control/wire/protocol.ts';
import { message } from '../../../control/wire/protocol.ts';
import { type Connection, listenTls } from '../../../control/wire/transport.ts';
import type { FleetPki } from '../../control/command-fixture.ts';

export interface StandInBroker {
  port: number;
  address: string;
  received: Message[];
  /** Sends to the most recently connected peer. */
  send(kind: Message['kind'], fields: Record<string, unknown>): void;
  /** Waits (bounded) for a received frame matching `pred`. */
  waitFor(pred: (m: Message) => boolean, timeoutMs?: number): Promise<Message>;
  waitConnected(timeoutMs?: number): Promise<void>;
  /** Drops the current connection (the peer reconnects). */
  drop(): void;
  close(): Promise<void>;
}

export async function standInBroker(p: FleetPki, port = 0): Promise<StandInBroker> {
  const received: Message[] = [];
  let current: Connection | undefined;
  const waiters: Array<() => void> = [];
  const poke = () => {
    for (const w of waiters.splice(0)) w();
  };
  const listener = await listenTls({
    tls: tlsContextOptions({
      keyPath: p.broker.keyPath,
      certPath: p.broker.certPath,
      anchors: [p.root.cert],
    }),
    port,
    onConnection: (c) => {
      c.onMessage((m) => {
        if (m.kind === 'hello') {
          current = c;
          c.send(
            message('reply', {
              re: m.id,
              role: 'peer',
              identity: c.peerCertificate()?.peerId ?? 'anonymous',
            }),
          );
        } else received.push(m);
        poke();
      });
      c.onClose(() => {
        if (current === c) current = undefined;
        poke();
      });
    },
  });
  const until = async (cond: () => boolean, timeoutMs: number, what: string): Promise<void> => {
    const end = Date.now() + timeoutMs;
    while (!cond()) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`stand-in broker: timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 200));
        waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  };
  return {
    port: listener.port,
    address: `127.0.0.1:${listener.port}`,
    received,
    send(kind, fields) {
      if (current === undefined) throw new Error('stand-in broker: no peer connected');
      current.send(message(kind, fields));
    },
    async waitFor(pred, timeoutMs = 15_000) {
      let found: Message | undefined;
      await until(
        () => {
          found = received.find(pred);
          return found !== undefined;
        },
        timeoutMs,
        'a frame',
      );
      return found as Message;
    },
    waitConnected: (timeoutMs = 15_000) => until(() => current !== undefined, timeoutMs, 'a peer connection'),
    drop() {
      current?.socket.destroy();
      current = undefined;
    },
    async close() {
      current?.socket.destroy();
      await listener.close();
    },
  };
}
