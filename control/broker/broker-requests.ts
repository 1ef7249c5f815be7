// Request handlers of the broker, one per message kind (doc/protocol.md has the table).
// The caller (broker.ts) has already checked the sender's role may send the kind; each
// handler returns the reply fields, or undefined for one-way messages.
import { errorMessage } from '../../common/index.ts';
import { type Envelope, parseCertificates } from '../../keys/index.ts';
import type { BrokerContext, Session } from './broker-context.ts';
import type { BrokerJobs } from './broker-jobs.ts';
import { sweepEnrollments } from './enrollment-sweep.ts';
import {
  checkEnrollmentRequest,
  checkIssuedCertificate,
  ControlError,
  isId,
  type Message,
  type MessageOf,
  type Outcome,
} from '../wire/index.ts';

const MAX_LIST = 10_000;

function limitOf(v: unknown, dflt: number): number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? Math.min(v, MAX_LIST) : dflt;
}

function envelopeOfType(v: unknown, type: string, field: string): unknown {
  const e = v as { type?: unknown } | undefined;
  if (e?.type !== type)
    throw new ControlError('E_PROTOCOL', `${field} is not a ${type} envelope`, { path: field });
  return v;
}

/** The broker as the handlers see it: its context and its job bookkeeping. */
export interface RequestContext extends BrokerContext {
  readonly jobs: BrokerJobs;
}

/**
 * `enroll-request` and `enroll-status`, from an anonymous connection: the same answer whichever
 * transport carried the question (a TLS connection without a certificate, or NATS).
 */
export function answerEnrollment(b: BrokerContext, m: Message): Record<string, unknown> {
  const now = b.now();
  const iso = now.toISOString();
  switch (m.kind) {
    case 'enroll-request': {
      const req = checkEnrollmentRequest(m.request, now);
      // A stale request of the same key goes first, so this fresh one is the one kept.
      sweepEnrollments(b);
      const existing = b.db.enrollment(req.requestId);
      if (existing === undefined) {
        b.db.tx(() => {
          b.db.addEnrollment({
            requestId: req.requestId,
            peerId: req.payload.peerId,
            name: req.payload.name,
            fingerprint: req.fingerprint,
            labels: req.payload.labels,
            request: m.request,
            created: iso,
          });
          b.audit.append(
            'enroll-request',
            `anonymous:${req.payload.peerId}`,
            {
              requestId: req.requestId,
              peerId: req.payload.peerId,
              fingerprint: req.fingerprint,
            },
            now,
          );
        });
      }
      return { requestId: req.requestId, fingerprint: req.fingerprint, state: existing?.state ?? 'pending' };
    }
    case 'enroll-status': {
      const e = b.db.enrollment(m.requestId as string);
      if (e === undefined)
        throw new ControlError('E_ENROLL_UNKNOWN', `No enrollment request ${String(m.requestId)}`);
      return {
        requestId: e.requestId,
        state: e.state,
        ...(e.certificate === null ? {} : { certificate: e.certificate }),
      };
    }
    default:
      throw new ControlError('E_PROTOCOL', `${m.kind} is not an enrollment question`);
  }
}

export function handleRequest(
  b: RequestContext,
  s: Session,
  m: Message,
): Record<string, unknown> | undefined {
  const now = b.now();
  const iso = now.toISOString();
  switch (m.kind) {
    case 'ping':
      return { time: iso };

    // ---- anonymous: enrollment (over NATS too: nats-enroll.ts) ----
    case 'enroll-request':
    case 'enroll-status':
      return answerEnrollment(b, m);

    // ---- operators ----
    case 'enrollment-list':
      // Never list a request `mway peers accept` would refuse as too old.
      sweepEnrollments(b);
      return {
        requests: b.db.enrollments().map((e) => ({
          requestId: e.requestId,
          peerId: e.peerId,
          name: e.name,
          fingerprint: e.fingerprint,
          labels: e.labels,
          state: e.state,
          created: e.created,
          // The signed request itself: `mway peers accept` needs its keys to issue the certificate.
          request: e.request,
        })),
      };
    case 'enrollment-accept': {
      const e = b.db.enrollment(m.requestId as string);
      if (e === undefined)
        throw new ControlError('E_ENROLL_UNKNOWN', `No enrollment request ${String(m.requestId)}`);
      if (e.state !== 'pending')
        throw new ControlError('E_ENROLL_STATE', `Enrollment ${e.requestId} is already ${e.state}`);
      // Re-check at the time it was made: acceptance may come days later.
      const req = checkEnrollmentRequest(e.request, new Date(e.created));
      let chain: ReturnType<typeof parseCertificates>;
      try {
        chain = parseCertificates(m.certificate as string);
      } catch (err) {
        throw new ControlError(
          'E_ENROLL_CERT',
          `Certificate for ${e.peerId} does not parse: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
      }
      const leaf = checkIssuedCertificate(req, chain, {
        anchors: b.anchors,
        ...(b.crls === undefined ? {} : { crls: b.crls }),
      });
      const a = m as MessageOf<'enrollment-accept'>;
      const peerId = leaf.peerId as string;
      const taken = b.db.peer(peerId);
      if (taken !== undefined && taken.fingerprint !== leaf.fingerprint && a.replace !== true) {
        // Another machine holds this id: taking it over must be said out loud (a reinstall).
        throw new ControlError(
          'E_ENROLL_TAKEN',
          `Peer id ${peerId} belongs to another certificate (${taken.fingerprint.slice(0, 16)}…); accept with replace to take it over`,
        );
      }
      b.db.tx(() => {
        b.db.setEnrollmentState(e.requestId, 'accepted', m.certificate as string);
        b.db.upsertPeer({
          peerId,
          name: e.name,
          fingerprint: leaf.fingerprint,
          certificate: leaf.pem,
          now: iso,
        });
        b.db.setPeerLabels(peerId, a.labels ?? e.labels);
        b.audit.append(
          'enrollment-accept',
          s.actor,
          { requestId: e.requestId, peerId, certificate: leaf.fingerprint },
          now,
        );
      });
      return { peerId, fingerprint: leaf.fingerprint };
    }
    case 'enrollment-reject': {
      const e = b.db.enrollment(m.requestId as string);
      if (e === undefined)
        throw new ControlError('E_ENROLL_UNKNOWN', `No enrollment request ${String(m.requestId)}`);
      if (e.state !== 'pending')
        throw new ControlError('E_ENROLL_STATE', `Enrollment ${e.requestId} is already ${e.state}`);
      b.db.tx(() => {
        b.db.setEnrollmentState(e.requestId, 'rejected', null);
        b.audit.append('enrollment-reject', s.actor, { requestId: e.requestId, peerId: e.peerId }, now);
      });
      return { peerId: e.peerId };
    }
    case 'command-submit': {
      // The frame decoder checked it against the schema of its kind (control/wire/protocol.ts).
      const c = m as MessageOf<'command-submit'>;
      const r = b.jobs.submit(s, {
        jobId: c.jobId,
        command: c.command,
        targets: c.targets,
        expiresAt: c.expiresAt,
        ...(c.batch === undefined ? {} : { batch: c.batch }),
        ...(c.maxFail === undefined ? {} : { maxFail: c.maxFail }),
        ...(c.cancels === undefined ? {} : { cancels: c.cancels }),
      });
      if (c.watch === true) b.jobs.watch(s, r.jobId);
      return r;
    }
    case 'job-list':
      return { jobs: b.db.jobHeads(limitOf(m.limit, 100)).map((j) => b.jobs.summary(j.jobId)) };
    case 'job-get':
    case 'job-watch': {
      const jobId = m.jobId as string;
      const summary = b.jobs.summary(jobId);
      const j = b.db.job(jobId);
      if (summary === undefined || j === undefined)
        throw new ControlError('E_JOB_UNKNOWN', `No job ${jobId}`);
      if (m.kind === 'job-watch') b.jobs.watch(s, jobId);
      return {
        job: {
          ...summary,
          command: j.command,
          peers: b.db.deliveries(jobId).map((d) => ({
            peerId: d.peerId,
            state: d.state,
            outcome: d.outcome,
            result: d.result,
            sent: d.sent,
          })),
        },
      };
    }
    case 'peers-list':
      return {
        peers: b.db.peers().map((p) => ({
          peerId: p.peerId,
          name: p.name,
          fingerprint: p.fingerprint,
          certificate: p.certificate,
          online: b.peers.has(p.peerId),
          lastSeen: p.lastSeen,
          status: p.status,
          labels: p.labels,
          groups: b.db.groupsOf(p.peerId),
        })),
      };
    case 'group-create': {
      const g = m.group as string;
      const created = b.db.tx(() => {
        const c = b.db.createGroup(g, iso);
        if (c) b.audit.append('group-create', s.actor, { group: g }, now);
        return c;
      });
      return { group: g, created };
    }
    case 'group-delete': {
      const g = m.group as string;
      const holders = b.db.holders(g);
      if (holders.length > 0) {
        // Deleting the routing row would leave every member holding its signed membership:
        // the members are sent signed removals first (`mway group delete` does that).
        throw new ControlError(
          'E_GROUP_NOT_EMPTY',
          `Group ${g} still has ${holders.length} member(s) (${holders.slice(0, 5).join(', ')}${holders.length > 5 ? ', …' : ''}); remove them with signed removals first`,
          { details: { members: holders } },
        );
      }
      const deleted = b.db.tx(() => {
        const d = b.db.deleteGroup(g);
        if (d) b.audit.append('group-delete', s.actor, { group: g }, now);
        return d;
      });
      if (!deleted) throw new ControlError('E_GROUP_UNKNOWN', `No group ${g}`);
      return { group: g };
    }
    case 'group-list':
      return { groups: b.db.groups() };
    case 'membership-put':
    case 'membership-delete': {
      const group = m.group as string;
      const peerId = m.peerId as string;
      const op = m.kind === 'membership-put' ? 'put' : 'delete';
      if (!b.db.hasGroup(group))
        throw new ControlError('E_GROUP_UNKNOWN', `No group ${group}; create it first`);
      const envelope =
        m.membership === undefined ? undefined : envelopeOfType(m.membership, 'membership', 'membership');
      if (op === 'put' && envelope === undefined)
        throw new ControlError('E_PROTOCOL', 'membership-put needs a membership');
      if (b.db.peer(peerId) === undefined)
        throw new ControlError('E_PEER_UNKNOWN', `No peer ${peerId}: it never connected or enrolled`);
      b.db.tx(() => {
        b.db.putMembership({ group, peerId, op, envelope, now: iso });
        b.audit.append(`membership-${op}`, s.actor, { group, peerId, envelope: envelope ?? null }, now);
      });
      if (m.watch === true) b.jobs.watchMembership(s, group, peerId);
      const ps = b.peers.get(peerId);
      if (ps !== undefined) b.jobs.sendMembership(ps, group, op, envelope);
      else if (b.nats !== undefined && envelope !== undefined) {
        // NATS mode: the statement waits in the peer's mailbox; its signed ack comes back there.
        void b.nats
          .deliverMembership(peerId, {
            group,
            op,
            membership: envelope as Envelope,
            id: `m.${group}.${op}.${iso}`,
          })
          .catch((e: unknown) =>
            b.log(
              'error',
              `broker: membership of ${peerId} in ${group} not stored in NATS: ${errorMessage(e)}`,
              { peer: peerId, group },
            ),
          );
      }
      return { group, peerId, online: ps !== undefined || b.nats !== undefined };
    }
    case 'pending-list': {
      const peerId = m.peerId;
      if (peerId !== undefined && !isId(peerId))
        throw new ControlError('E_PROTOCOL', 'peerId is not an id', { path: 'peerId' });
      return { pending: b.db.pendingList(peerId) };
    }
    case 'audit-get': {
      const from = typeof m.from === 'number' && Number.isSafeInteger(m.from) && m.from > 0 ? m.from : 1;
      return { entries: b.audit.read(from, limitOf(m.limit, 1000)), head: b.audit.head()?.hash ?? null };
    }

    // ---- peers ----
    case 'command-ack':
      return undefined;
    case 'result':
      b.jobs.onResult(
        s,
        m.jobId as string,
        m.outcome as Outcome,
        envelopeOfType(m.result, 'result', 'result'),
      );
      // A result sent as a request is answered only once it is committed.
      if (m.id !== undefined) b.jobs.flushResults();
      return undefined;
    case 'status':
      b.db.setPeerStatus(s.identity, envelopeOfType(m.status, 'status', 'status'), iso);
      return undefined;
    case 'membership-ack': {
      const a = m as MessageOf<'membership-ack'>;
      // An ack without `ok` is from a peer before signed acks: it applied the membership.
      const refusal = a.ok === false ? (a.code ?? 'E_MEMBERSHIP_INVALID') : null;
      b.jobs.onMembershipAck(s.identity, a.group, a.op, refusal, a.ack);
      return undefined;
    }
    default:
      throw new ControlError('E_PROTOCOL', `The broker does not handle ${m.kind}`);
  }
}
