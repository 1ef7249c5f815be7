// The MilkyWay control wire protocol (doc/protocol.md): length-prefixed JSON frames over
// TLS 1.3. A frame is a 4-byte big-endian body length, then that many bytes of UTF-8 JSON
// holding one message object. The length is checked against MAX_FRAME before a single byte
// of the body is buffered, so a hostile peer cannot make us allocate more than that.
// Signed payloads (commands, results, status, memberships) travel as keys/ envelopes and
// are opaque to the broker: it only reads the routing fields next to them.
import { schema } from '../../common/index.ts';
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
export const BROKER_KINDS = [
  'reply',
  'error',
  'command-deliver',
  'membership-deliver',
  'job-event',
  'membership-event',
] as const;

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

const { defineFormat, flag, int, list, oneOf, text, v } = schema;

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:@-]*$/;

/** True for a string usable as a peer id, group name or job id. */
export function isId(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_ID && ID_RE.test(v);
}

/** Outcome a peer reports next to its signed result (an unsigned routing hint for job summaries). */
export const OUTCOMES = ['ok', 'failed', 'refused'] as const;
export type Outcome = (typeof OUTCOMES)[number];

const id = () =>
  text({ pattern: ID_RE, max: MAX_ID, hint: `is not an id (at most ${MAX_ID} of [A-Za-z0-9._:@-])` });
const seq = () => int(0, Number.MAX_SAFE_INTEGER, 'a non-negative integer');
/** A keys/ envelope as the broker sees it: its signatures are checked by whoever acts on it. */
const envelope = () =>
  schema.openObject({
    v: v.literal(1, 'expected an envelope of version 1'),
    type: text({ max: 64 }),
    payload: v.unknown(),
    signatures: v.array(v.unknown(), 'expected an array of signatures'),
  });
const opt = v.exactOptional;

// Unknown fields are kept, not refused: a broker and its peers are updated one at a time, so
// a newer sender's extra field must not break an older receiver. Authority is in the signed
// envelopes, whose own checks are strict (keys/envelope.ts).
function kind<const K extends Kind, E extends schema.v.ObjectEntries>(k: K, entries: E) {
  return v.looseObject({
    v: v.literal(PROTOCOL_VERSION, (i) => `version is ${schema.shown(i.input)}, expected 1`),
    kind: v.literal(k),
    id: opt(seq()),
    re: opt(seq()),
    ...entries,
  });
}

// A reply must carry `re` (the request it answers); its other fields depend on the request.
const reply = v.looseObject({
  v: v.literal(PROTOCOL_VERSION, (i) => `version is ${schema.shown(i.input)}, expected 1`),
  kind: v.literal('reply'),
  re: seq(),
});

/** Every message, one member per kind (doc/protocol.md has the table). */
const messageSchema = schema.variant('kind', [
  // `chain`: the certificates above the TLS client certificate, base64 DER (a peer issued by
  // the peer issuer sends that issuer): Node's server side cannot read the chain a client sent
  // in the handshake, so the broker gets it here and verifies it from the TLS leaf up.
  kind('hello', {
    role: oneOf(['peer', 'operator']),
    chain: opt(list(text({ max: 90_000, pattern: /^[A-Za-z0-9+/]+={0,2}$/, hint: 'is not base64 DER' }), 4)),
  }),
  kind('ping', {}),
  reply,
  kind('error', {
    code: text({ max: 64 }),
    message: text({ max: 65_536 }),
    details: opt(schema.anyObject),
  }),
  kind('enroll-request', { request: schema.anyObject }),
  kind('enroll-status', { requestId: id() }),
  kind('enrollment-list', {}),
  kind('enrollment-accept', {
    requestId: id(),
    certificate: text({ max: 1 << 20 }),
    labels: opt(v.record(text({ pattern: ID_RE, max: MAX_ID }), text({ max: 256 }))),
    replace: opt(flag()),
  }),
  kind('enrollment-reject', { requestId: id() }),
  kind('command-submit', {
    jobId: id(),
    command: envelope(),
    targets: list(id(), MAX_TARGETS),
    expiresAt: text({ max: 64 }),
    batch: opt(int(1, MAX_TARGETS, 'a window size')),
    maxFail: opt(int(0, MAX_TARGETS, 'a failure count')),
    watch: opt(flag()),
    /** This job is the signed cancellation of that one: the broker stops delivering it. */
    cancels: opt(id()),
  }),
  kind('command-deliver', { jobId: id(), command: envelope(), expiresAt: text({ max: 64 }) }),
  kind('command-ack', { jobId: id() }),
  kind('result', {
    jobId: id(),
    result: envelope(),
    outcome: v.picklist(OUTCOMES, (i) => `outcome ${schema.shown(i.input)} is not ok, failed or refused`),
  }),
  kind('job-event', {
    jobId: id(),
    peerId: id(),
    outcome: text({ max: 64 }),
    result: opt(envelope()),
    state: opt(text({ max: 64 })),
  }),
  kind('job-list', { limit: opt(seq()) }),
  kind('job-get', { jobId: id() }),
  kind('job-watch', { jobId: id() }),
  kind('status', { status: envelope() }),
  kind('peers-list', {}),
  kind('group-create', { group: id() }),
  kind('group-delete', { group: id() }),
  kind('group-list', {}),
  kind('membership-put', { group: id(), peerId: id(), membership: envelope(), watch: opt(flag()) }),
  kind('membership-delete', {
    group: id(),
    peerId: id(),
    membership: opt(envelope()),
    watch: opt(flag()),
  }),
  kind('membership-deliver', {
    group: id(),
    peerId: id(),
    op: oneOf(['put', 'delete']),
    membership: opt(envelope()),
  }),
  // `ack` is the peer's signed answer (a result envelope bound to the membership's digest):
  // what the operator believes; `ok`/`code` beside it are routing hints for the broker.
  kind('membership-ack', {
    group: id(),
    op: text({ max: 16 }),
    ok: opt(flag()),
    code: opt(text({ max: 64 })),
    message: opt(text({ max: 65_536 })),
    ack: opt(envelope()),
  }),
  kind('membership-event', {
    group: id(),
    peerId: id(),
    op: text({ max: 16 }),
    ok: opt(flag()),
    code: opt(text({ max: 64 })),
    ack: opt(envelope()),
  }),
  kind('pending-list', { peerId: opt(id()) }),
  kind('audit-get', { from: opt(seq()), limit: opt(seq()) }),
]);

/** The message format: doc/protocol.schema.json is emitted from it. */
export const messageFormat = defineFormat({
  name: 'protocol',
  title: 'MilkyWay control protocol message (one frame body)',
  schema: messageSchema,
  error: (issue, kind) =>
    new ControlError('E_PROTOCOL', `Cannot decode ${kind ?? 'message'}: ${issue.keyPath}: ${issue.problem}`, {
      path: issue.keyPath,
    }),
});

/**
 * One message as senders build it. `id` is set by the sender of a request and echoed as `re`
 * in the broker's `reply` / `error`; one-way messages have neither. What each kind carries
 * is `messageSchema` above; `checkMessage` returns a value of `CheckedMessage`.
 */
export interface Message {
  v: 1;
  kind: Kind;
  id?: number;
  re?: number;
  [field: string]: unknown;
}
/** A checked message: a union discriminated by `kind` (`m.kind === 'result'` narrows it). */
export type CheckedMessage = schema.Output<typeof messageSchema>;
/** The fields of one kind of message, as checkMessage guarantees them. */
export type MessageOf<K extends Kind> = Extract<CheckedMessage, { kind: K }>;

/** Checks a decoded value is a message of a known kind with its fields; returns it typed. */
export function checkMessage(value: unknown): Message {
  const k = (value as { kind?: unknown } | null)?.kind;
  const what = typeof k === 'string' && (ALL_KINDS as readonly string[]).includes(k) ? k : 'message';
  return messageFormat.parse(value, what) as Message;
}

/** Encodes one message as a frame (header + JSON body); refuses bodies over MAX_FRAME. */
export function encodeFrame(message: Message): Buffer {
  return frameOf(message.kind, JSON.stringify(message));
}

/**
 * encodeFrame of `message` with `field` set to the value whose JSON text is `json` (the broker
 * has a result envelope's canonical text already, from its audit entry: it is not written out
 * a second time). `json` must be the JSON text of one value; `field` must not be in `message`.
 */
export function encodeFrameWith(message: Message, field: string, json: string): Buffer {
  const head = JSON.stringify(message);
  return frameOf(message.kind, `${head.slice(0, -1)},${JSON.stringify(field)}:${json}}`);
}

function frameOf(kind: string, text: string): Buffer {
  const length = Buffer.byteLength(text, 'utf8');
  if (length > MAX_FRAME) {
    throw new ControlError(
      'E_FRAME_TOO_LARGE',
      `Cannot encode ${kind}: frame is ${length} bytes, at most ${MAX_FRAME}`,
    );
  }
  const out = Buffer.allocUnsafe(HEADER_SIZE + length);
  out.writeUInt32BE(length, 0);
  out.write(text, HEADER_SIZE, 'utf8');
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

function bad(message: string): ControlError {
  return new ControlError('E_PROTOCOL', message);
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
