// TLS 1.3 transport for the control protocol: a framed message connection over node:tls
// (mutual authentication with keys/ certificates, X25519MLKEM768 key exchange by default in
// Node 24), the broker's listener, and the client every peer and operator uses
// (`connectBroker`). The client trusts a broker only if its certificate chains to the
// given anchors and has the broker role; the host name is not checked because brokers
// are found by mDNS or IP address, and the broker is untrusted for content anyway.
import { once } from 'node:events';
import { connect, createServer, type SecureContextOptions, type Server, type TLSSocket } from 'node:tls';
import { errorMessage, RemoteError } from '../../common/index.ts';
import { type Certificate, parseCertificates } from '../../keys/index.ts';
import { ControlError } from './control-error.ts';
import { encodeFrame, FrameDecoder, InvalidMessage, type Message, message, type Role } from './protocol.ts';

/** Highest number of bytes queued for writing before `send` refuses (a slow reader). */
export const MAX_WRITE_BACKLOG = 64 * 1024 * 1024;

/** One framed TLS connection (either side). */
export class Connection {
  readonly socket: TLSSocket;
  readonly #decoder: FrameDecoder;
  #onMessage: (m: Message) => void = () => {};
  // By default a frame that is JSON but not a valid message ends the connection; the broker
  // replaces this to answer `error` and keep serving.
  #onInvalid: (m: InvalidMessage) => void = (m) => this.#fail(m.error);
  #onClose: (reason: Error | undefined) => void = () => {};
  #closed = false;
  #closeReason: Error | undefined;

  constructor(socket: TLSSocket, maxFrame?: number) {
    this.socket = socket;
    this.#decoder = new FrameDecoder(maxFrame);
    socket.on('data', (chunk: Buffer) => {
      let msgs: Array<Message | InvalidMessage>;
      try {
        msgs = this.#decoder.push(chunk);
      } catch (e) {
        // A malformed or oversized frame ends the connection: resynchronising a byte stream
        // after a bad length is not possible.
        this.#fail(e as Error);
        return;
      }
      for (const m of msgs) {
        if (this.#closed) return;
        if (m instanceof InvalidMessage) this.#onInvalid(m);
        else this.#onMessage(m);
      }
    });
    socket.on('error', (e) => this.#fail(e));
    socket.on('close', () => this.#fail(undefined));
  }

  #fail(reason: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    this.socket.destroy();
    this.#onClose(reason);
  }

  get closed(): boolean {
    return this.#closed;
  }

  get closeReason(): Error | undefined {
    return this.#closeReason;
  }

  onMessage(f: (m: Message) => void): void {
    this.#onMessage = f;
  }

  onInvalid(f: (m: InvalidMessage) => void): void {
    this.#onInvalid = f;
  }

  onClose(f: (reason: Error | undefined) => void): void {
    this.#onClose = f;
    if (this.#closed) f(this.#closeReason);
  }

  /** Queues one message; throws E_CONNECTION_CLOSED or E_BACKPRESSURE. */
  send(m: Message): void {
    if (this.#closed)
      throw new ControlError('E_CONNECTION_CLOSED', `Cannot send ${m.kind}: connection is closed`);
    if (this.socket.writableLength > MAX_WRITE_BACKLOG) {
      this.#fail(new ControlError('E_BACKPRESSURE', 'Connection closed: the other side does not read'));
      throw new ControlError('E_BACKPRESSURE', `Cannot send ${m.kind}: the other side does not read`);
    }
    this.socket.write(encodeFrame(m));
  }

  /** Writes a frame made by encodeFrame() (for one message sent to many connections). */
  sendFrame(frame: Buffer): void {
    if (this.#closed) throw new ControlError('E_CONNECTION_CLOSED', 'Cannot send: connection is closed');
    if (this.socket.writableLength > MAX_WRITE_BACKLOG) {
      this.#fail(new ControlError('E_BACKPRESSURE', 'Connection closed: the other side does not read'));
      throw new ControlError('E_BACKPRESSURE', 'Cannot send: the other side does not read');
    }
    this.socket.write(frame);
  }

  /** The other side's leaf certificate parsed by keys/ (undefined when it sent none). */
  peerCertificate(): Certificate | undefined {
    const x = this.socket.getPeerX509Certificate();
    if (x === undefined) return undefined;
    return parseCertificates(new Uint8Array(x.raw))[0];
  }

  /** The negotiated key exchange group, e.g. X25519MLKEM768 (for tests and `mway status`). */
  keyExchange(): string | undefined {
    const info = this.socket.getEphemeralKeyInfo() as { name?: string } | null;
    return info?.name;
  }

  close(): void {
    if (this.#closed) return;
    this.socket.end();
    // end() lets queued frames drain; destroy if the other side never closes its half.
    setTimeout(() => this.#fail(undefined), 2_000).unref();
  }
}

export interface ListenOptions {
  /** keys/ tlsContextOptions() of the broker identity (TLS 1.3 only, ca = user roots). */
  tls: SecureContextOptions;
  host?: string;
  port?: number;
  maxFrame?: number;
  onConnection: (c: Connection) => void;
}

/**
 * Listens for peers and operators. Client certificates are requested but not required at
 * the TLS layer, so an unknown peer can connect to enroll; the broker gives such a
 * connection only the enrollment kinds (`socket.authorized` says whether a client
 * certificate chained to the anchors).
 */
export async function listenTls(
  o: ListenOptions,
): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer(
    { ...o.tls, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' },
    (socket) => o.onConnection(new Connection(socket, o.maxFrame)),
  );
  // A failed handshake is the client's problem; it must not stop the listener.
  server.on('tlsClientError', () => {});
  server.listen(o.port ?? 0, o.host ?? '127.0.0.1');
  await Promise.race([
    once(server, 'listening'),
    once(server, 'error').then(([e]) => {
      throw new ControlError(
        'E_LISTEN',
        `Cannot listen on ${o.host ?? '127.0.0.1'}:${o.port ?? 0}: ${errorMessage(e)}`,
        {
          cause: e,
        },
      );
    }),
  ]);
  const port = (server.address() as { port: number }).port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
      }),
  };
}

export interface ConnectOptions {
  /** `host:port` (IPv6 as `[::1]:port`). */
  address: string;
  /**
   * TLS options: keys/ tlsContextOptions() of the peer or operator identity, or for an
   * enrolling peer without a certificate just `{ ca: [root PEM] }`.
   */
  tls: SecureContextOptions;
  role: Role;
  /** Broker certificate fingerprint (sha256 of DER, hex) to require, e.g. from mDNS TXT. */
  brokerFingerprint?: string;
  /** Messages the broker sends that are not replies (command-deliver, job-event, …). */
  onMessage?: (m: Message) => void;
  onClose?: (reason: Error | undefined) => void;
  /** Handshake + hello timeout and default request timeout, ms (default 10 s). */
  timeoutMs?: number;
  maxFrame?: number;
}

export interface BrokerClient {
  /** The broker's reply to hello: `identity` is how it knows us (peer id, operator fingerprint or `anonymous`). */
  welcome: Message;
  /** The broker's leaf certificate. */
  broker: Certificate;
  connection: Connection;
  /** One-way message. */
  send(kind: Message['kind'], fields?: Record<string, unknown>): void;
  /** Request; resolves with the broker's `reply`, rejects with a ControlError carrying the broker's code. */
  request(kind: Message['kind'], fields?: Record<string, unknown>, timeoutMs?: number): Promise<Message>;
  close(): void;
  /** Resolves when the connection ends (the reason, if any). */
  closed: Promise<Error | undefined>;
}

/**
 * The certificates after the first in a TLS `cert` option (a PEM chain, as keys/ writes a
 * leaf's file), base64 DER, for `hello`: the broker cannot read them from the handshake.
 */
function certificatesAbove(cert: SecureContextOptions['cert']): string[] {
  if (cert === undefined) return [];
  const pems = (Array.isArray(cert) ? cert : [cert]).map((c) =>
    typeof c === 'string' ? c : Buffer.from(c).toString('latin1'),
  );
  const all = pems.flatMap((pem) => parseCertificates(pem, 'TLS certificate'));
  return all.slice(1, 5).map((c) => Buffer.from(c.der).toString('base64'));
}

function splitAddress(address: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
  const port = m === null ? Number.NaN : Number(m[2]);
  if (m === null || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ControlError('E_ADDRESS', `Broker address ${JSON.stringify(address)} is not host:port`);
  }
  return { host: m[1] as string, port };
}

/** The socket errors that say no server took the connection (before any TLS byte). */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
]);

/**
 * Connects to a broker, checks its certificate (chain to the anchors in `tls.ca`, role
 * broker, optional fingerprint), sends `hello` and waits for `welcome`.
 */
export async function connectBroker(o: ConnectOptions): Promise<BrokerClient> {
  const { host, port } = splitAddress(o.address);
  const timeoutMs = o.timeoutMs ?? 10_000;
  const socket = connect({
    ...o.tls,
    host,
    port,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    rejectUnauthorized: true,
    // Role and fingerprint are checked below; the chain to the anchors by OpenSSL.
    checkServerIdentity: () => undefined,
  });
  const conn = new Connection(socket, o.maxFrame);
  const timer = setTimeout(
    () =>
      socket.destroy(
        new ControlError('E_TIMEOUT', `Cannot connect to broker ${o.address}: no answer in ${timeoutMs} ms`),
      ),
    timeoutMs,
  );
  try {
    await Promise.race([
      once(socket, 'secureConnect'),
      once(socket, 'close').then(() => {
        throw conn.closeReason ?? new Error('connection closed during handshake');
      }),
    ]);
  } catch (e) {
    clearTimeout(timer);
    socket.destroy();
    if (e instanceof ControlError) throw e;
    // Nothing answering at the address is not a broker we distrust: the two need different
    // fixes (start it or fix the address; check the trust roots), so they have different codes.
    const sys = (e as { code?: unknown }).code;
    const unreachable = typeof sys === 'string' && UNREACHABLE.has(sys);
    throw new ControlError(
      unreachable ? 'E_BROKER_UNREACHABLE' : 'E_BROKER_UNTRUSTED',
      `Cannot connect to broker ${o.address}: ${errorMessage(e)}`,
      { cause: e },
    );
  }
  const broker = conn.peerCertificate();
  const refuse = (why: string): never => {
    clearTimeout(timer);
    socket.destroy();
    throw new ControlError('E_BROKER_UNTRUSTED', `Refusing broker ${o.address}: ${why}`);
  };
  if (broker === undefined) refuse('it sent no certificate');
  const b = broker as Certificate;
  if (b.role !== 'broker') refuse(`its certificate ${b.subject} has role ${b.role}, not broker`);
  if (o.brokerFingerprint !== undefined && b.fingerprint !== o.brokerFingerprint.toLowerCase()) {
    refuse(`certificate fingerprint ${b.fingerprint} is not the advertised ${o.brokerFingerprint}`);
  }

  let nextId = 1;
  const waiting = new Map<
    number,
    { resolve: (m: Message) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();
  let resolveClosed: (r: Error | undefined) => void = () => {};
  const closed = new Promise<Error | undefined>((r) => {
    resolveClosed = r;
  });
  conn.onMessage((m) => {
    if ((m.kind === 'reply' || m.kind === 'error') && m.re !== undefined) {
      const w = waiting.get(m.re);
      if (w === undefined) return;
      waiting.delete(m.re);
      clearTimeout(w.timer);
      if (m.kind === 'reply') w.resolve(m);
      else {
        const details =
          typeof m.details === 'object' && m.details !== null
            ? (m.details as Record<string, unknown>)
            : undefined;
        // The broker's code, from whichever table its error came from.
        w.reject(
          new RemoteError(String(m.code), String(m.message), details === undefined ? {} : { details }),
        );
      }
      return;
    }
    o.onMessage?.(m);
  });
  conn.onClose((reason) => {
    for (const w of waiting.values()) {
      clearTimeout(w.timer);
      w.reject(
        new ControlError(
          'E_CONNECTION_CLOSED',
          `Broker connection closed${reason ? `: ${reason.message}` : ''}`,
        ),
      );
    }
    waiting.clear();
    resolveClosed(reason);
    o.onClose?.(reason);
  });

  const request = (
    kind: Message['kind'],
    fields: Record<string, unknown> = {},
    t = timeoutMs,
  ): Promise<Message> =>
    new Promise<Message>((resolve, reject) => {
      const id = nextId++;
      const tm = setTimeout(() => {
        waiting.delete(id);
        reject(new ControlError('E_TIMEOUT', `Broker did not answer ${kind} in ${t} ms`));
      }, t);
      waiting.set(id, { resolve, reject, timer: tm });
      try {
        conn.send(message(kind, { ...fields, id }));
      } catch (e) {
        clearTimeout(tm);
        waiting.delete(id);
        reject(e);
      }
    });

  let welcome: Message;
  try {
    const chain = certificatesAbove(o.tls.cert);
    welcome = await request('hello', { role: o.role, ...(chain.length > 0 ? { chain } : {}) }, timeoutMs);
  } catch (e) {
    conn.close();
    throw e;
  } finally {
    clearTimeout(timer);
  }
  return {
    welcome,
    broker: b,
    connection: conn,
    send: (kind, fields = {}) => conn.send(message(kind, fields)),
    request,
    close: () => conn.close(),
    closed,
  };
}
