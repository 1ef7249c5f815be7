// The MilkyWay control wire protocol (doc/protocol.md): length-prefixed JSON frames over
// TLS 1.3. A frame is a 4-byte big-endian body length, then that many bytes of UTF-8 JSON
// holding one message object. The length is checked against MAX_FRAME before a single byte
// of the body is buffered, so a hostile peer cannot make us allocate more than that.
// Signed payloads (commands, results, status, memberships) travel as keys/ envelopes and
// are opaque to the broker: it only reads the routing fields next to them.
import type { Envelope } from '../../keys/index.ts';
import { ControlError } from './control-error.ts';

export const PROTOCOL_VERSION = 1;
/** Bytes of the length prefix. */
export const HEADER_SIZE = 4;
/** Largest frame body: one keys/ envelope (16 MiB) base64-free JSON plus routing fields. */
export const MAX_FRAME = 17 * 1024 * 1024;
/** Largest number of ids in one target list (a fleet command goes to at most this many peers). */
export const MAX_TARGETS = 100_000;
/** Longest identifier (peer id, group name, job id) on the wire. */
export const MAX_ID = 128;

export type Role = 'peer' | 'operator';

/** Every message kind, grouped by who may send it (checked by the broker). */
export const PEER_KINDS = ['command-ack', 'result', 'status', 'membership-ack'] as const;
export const OPERATOR_KINDS = [
  'enrollment-list',
  'enrollment-accept',
  'enrollment-reject',
  'command-submit',
  'job-list',
  'job-get',
  'job-watch',
  'peers-list',
  'group-create',
  'group-delete',
  'group-list',
  'membership-put',
  'membership-delete',
  'audit-get',
  'pending-list',
] as const;
/** Kinds an unauthenticated connection (no client certificate) may send: enrollment only. */
export const ANONYMOUS_KINDS = ['enroll-request', 'enroll-status'] as const;
export const ANY_KINDS = ['hello', 'ping'] as const;
/** Kinds only the broker sends. */
export const BROKER_KINDS = ['reply', 'error', 'command-deliver', 'membership-deliver', 'job-event'] as const;

export type Kind =
  | (typeof PEER_KINDS)[number]
  | (typeof OPERATOR_KINDS)[number]
  | (typeof ANONYMOUS_KINDS)[number]
  | (typeof ANY_KINDS)[number]
  | (typeof BROKER_KINDS)[number];

export const ALL_KINDS: readonly Kind[] = [
  ...PEER_KINDS,
  ...OPERATOR_KINDS,
  ...ANONYMOUS_KINDS,
  ...ANY_KINDS,
  ...BROKER_KINDS,
];

/**
 * One message. `id` is set by the sender of a request and echoed as `re` in the broker's
 * `reply` / `error`; one-way messages have neither. Other fields depend on `kind`
 * (doc/protocol.md has the table); `checkMessage` enforces the required ones.
 */
export interface Message {
  v: 1;
  kind: Kind;
  id?: number;
  re?: number;
  [field: string]: unknown;
}

/** Fields each kind must carry and their JSON type ('envelope' = a keys/ envelope object). */
type FieldType = 'string' | 'number' | 'boolean' | 'object' | 'envelope' | 'ids' | 'id';
const REQUIRED: Partial<Record<Kind, Record<string, FieldType>>> = {
  hello: { role: 'string' },
  reply: { re: 'number' },
  error: { code: 'string', message: 'string' },
  'enroll-request': { request: 'object' },
  'enroll-status': { requestId: 'id' },
  'enrollment-accept': { requestId: 'id', certificate: 'string' },
  'enrollment-reject': { requestId: 'id' },
  'command-submit': { jobId: 'id', command: 'envelope', targets: 'ids', expiresAt: 'string' },
  'command-deliver': { jobId: 'id', command: 'envelope', expiresAt: 'string' },
  'command-ack': { jobId: 'id' },
  result: { jobId: 'id', result: 'envelope', outcome: 'string' },
  status: { status: 'envelope' },
  'job-get': { jobId: 'id' },
  'job-watch': { jobId: 'id' },
  'job-event': { jobId: 'id', peerId: 'id', outcome: 'string' },
  'group-create': { group: 'id' },
  'group-delete': { group: 'id' },
  'membership-put': { group: 'id', peerId: 'id', membership: 'envelope' },
  'membership-delete': { group: 'id', peerId: 'id' },
  'membership-deliver': { group: 'id', peerId: 'id', op: 'string' },
  'membership-ack': { group: 'id', op: 'string' },
};

/** Outcome a peer reports next to its signed result (an unsigned routing hint for job summaries). */
export const OUTCOMES = ['ok', 'failed', 'refused'] as const;
export type Outcome = (typeof OUTCOMES)[number];

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:@-]*$/;

function bad(message: string, field?: string): ControlError {
  return new ControlError('E_PROTOCOL', message, field === undefined ? {} : { path: field });
}

/** True for a string usable as a peer id, group name or job id. */
export function isId(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_ID && ID_RE.test(v);
}

function isEnvelopeShape(v: unknown): v is Envelope {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const e = v as Record<string, unknown>;
  return e.v === 1 && typeof e.type === 'string' && Array.isArray(e.signatures) && 'payload' in e;
}

/** Checks a decoded value is a message of a known kind with its required fields; returns it typed. */
export function checkMessage(value: unknown): Message {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bad('Cannot decode message: not a JSON object');
  }
  const m = value as Record<string, unknown>;
  if (m.v !== PROTOCOL_VERSION)
    throw bad(`Cannot decode message: version is ${String(m.v)}, expected 1`, 'v');
  if (typeof m.kind !== 'string' || !(ALL_KINDS as readonly string[]).includes(m.kind)) {
    throw bad(`Cannot decode message: unknown kind ${JSON.stringify(m.kind)}`, 'kind');
  }
  for (const f of ['id', 're'] as const) {
    const n = m[f];
    if (n !== undefined && (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)) {
      throw bad(`Cannot decode ${m.kind}: ${f} is not a non-negative integer`, f);
    }
  }
  const req = REQUIRED[m.kind as Kind] ?? {};
  for (const [field, type] of Object.entries(req)) {
    const v = m[field];
    const ok =
      type === 'envelope'
        ? isEnvelopeShape(v)
        : type === 'id'
          ? isId(v)
          : type === 'ids'
            ? Array.isArray(v) && v.length <= MAX_TARGETS && v.every(isId)
            : type === 'object'
              ? typeof v === 'object' && v !== null && !Array.isArray(v)
              : typeof v === type;
    if (!ok) throw bad(`Cannot decode ${m.kind}: field ${field} is missing or not ${type}`, field);
  }
  if (m.kind === 'result' && !(OUTCOMES as readonly string[]).includes(m.outcome as string)) {
    throw bad(
      `Cannot decode result: outcome ${JSON.stringify(m.outcome)} is not ok, failed or refused`,
      'outcome',
    );
  }
  return m as Message;
}

/** Encodes one message as a frame (header + JSON body); refuses bodies over MAX_FRAME. */
export function encodeFrame(message: Message): Buffer {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  if (body.length > MAX_FRAME) {
    throw new ControlError(
      'E_FRAME_TOO_LARGE',
      `Cannot encode ${message.kind}: frame is ${body.length} bytes, at most ${MAX_FRAME}`,
    );
  }
  const out = Buffer.allocUnsafe(HEADER_SIZE + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, HEADER_SIZE);
  return out;
}

/**
 * A frame that parsed as JSON but is not a valid message: the stream is still in sync, so
 * the receiver may answer `error` (to `id` when readable) instead of closing.
 */
export class InvalidMessage {
  readonly error: ControlError;
  readonly id: number | undefined;
  constructor(error: ControlError, id: number | undefined) {
    this.error = error;
    this.id = id;
  }
}

function parseBody(body: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch (e) {
    throw bad(`Cannot decode message: body is not UTF-8 JSON: ${(e as Error).message}`);
  }
}

/** Decodes one frame body (without its header). */
export function decodeBody(body: Uint8Array): Message {
  return checkMessage(parseBody(body));
}

/** Like decodeBody, but a well-formed JSON body that is not a valid message becomes InvalidMessage. */
export function decodeBodyLenient(body: Uint8Array): Message | InvalidMessage {
  const value = parseBody(body);
  try {
    return checkMessage(value);
  } catch (e) {
    const id = (value as { id?: unknown } | null)?.id;
    return new InvalidMessage(
      e as ControlError,
      typeof id === 'number' && Number.isSafeInteger(id) && id >= 0 ? id : undefined,
    );
  }
}

/**
 * Incremental frame reader: feed it socket chunks of any size, get whole messages back.
 * Throws E_FRAME_TOO_LARGE as soon as a header announces more than `maxFrame`, before
 * buffering the body.
 */
export class FrameDecoder {
  readonly #maxFrame: number;
  #chunks: Buffer[] = [];
  #buffered = 0;

  constructor(maxFrame = MAX_FRAME) {
    this.#maxFrame = maxFrame;
  }

  /** Bytes held waiting for the rest of a frame. */
  get buffered(): number {
    return this.#buffered;
  }

  push(chunk: Uint8Array): Array<Message | InvalidMessage> {
    this.#chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.#buffered += chunk.byteLength;
    const out: Array<Message | InvalidMessage> = [];
    for (;;) {
      if (this.#buffered < HEADER_SIZE) return out;
      // Join only the header's bytes if it is split, and the body only once it is complete,
      // so a large frame arriving in many small chunks is copied once, not once per chunk.
      if ((this.#chunks[0] as Buffer).length < HEADER_SIZE) this.#chunks = [Buffer.concat(this.#chunks)];
      const len = (this.#chunks[0] as Buffer).readUInt32BE(0);
      if (len > this.#maxFrame) {
        throw new ControlError(
          'E_FRAME_TOO_LARGE',
          `Cannot decode frame: header announces ${len} bytes, at most ${this.#maxFrame}`,
        );
      }
      if (this.#buffered < HEADER_SIZE + len) return out;
      const all = this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks);
      const body = all.subarray(HEADER_SIZE, HEADER_SIZE + len);
      const rest = all.subarray(HEADER_SIZE + len);
      this.#chunks = rest.length === 0 ? [] : [rest];
      this.#buffered = rest.length;
      out.push(decodeBodyLenient(body));
    }
  }
}

/** Builds a message with the version field set. */
export function message(kind: Kind, fields: Record<string, unknown> = {}): Message {
  return { ...fields, v: 1, kind };
}
