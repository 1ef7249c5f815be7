// The order a NATS peer hands its read-ahead backlog to the link (control/wire/nats-backlog.ts):
// a cancellation moves just before the earlier command it cancels, alone; nothing else moves.
import test from 'ava';
import { type BacklogItem, cancelTarget, handOutOrder, message } from '../../../control/wire/index.ts';

const ID = (n: number) => n.toString(16).padStart(32, '0');
const cmd = (seq: number, id: string, action = 'service.restart', args: Record<string, unknown> = {}) =>
  ({
    seq,
    msg: message('command-deliver', {
      jobId: id,
      command: { type: 'command', payload: { id, action, args } },
      expiresAt: new Date().toISOString(),
    }),
  }) as BacklogItem;
const cancel = (seq: number, id: string, target: unknown) => cmd(seq, id, 'job.cancel', { job: target });
const member = (seq: number) =>
  ({
    seq,
    msg: message('membership-deliver', { group: 'web', peerId: 'p1', op: 'put', membership: {} }),
  }) as BacklogItem;
const order = (items: BacklogItem[]) => handOutOrder(items).map((s) => `${s.item.seq}${s.alone ? '!' : ''}`);

test('handOutOrder() moves a cancellation just before the earlier command it names, alone', (t) => {
  t.deepEqual(order([member(1), cmd(2, ID(2)), cmd(3, ID(3)), cancel(4, ID(4), ID(2))]), [
    '1',
    '4!',
    '2',
    '3',
  ]);
  // Two cancellations of the same command, and one of a later command: each before its own.
  t.deepEqual(
    order([
      cmd(1, ID(1)),
      cmd(2, ID(2)),
      cancel(3, ID(3), ID(2)),
      cancel(4, ID(4), ID(1)),
      cancel(5, ID(5), ID(2)),
    ]),
    ['4!', '1', '3!', '5!', '2'],
  );
});

test('handOutOrder() leaves the order alone when no cancellation follows its command', (t) => {
  // Its command not in the backlog (handed earlier, or never seen), or stored after it.
  t.deepEqual(order([cancel(1, ID(1), ID(9)), cmd(2, ID(2))]), ['1', '2']);
  t.deepEqual(order([cancel(1, ID(1), ID(2)), cmd(2, ID(2))]), ['1', '2']);
  // Malformed job fields and non-commands never move anything.
  t.deepEqual(order([cmd(1, ID(1)), cancel(2, ID(2), 7), cancel(3, ID(3), undefined), member(4)]), [
    '1',
    '2',
    '3',
    '4',
  ]);
  t.deepEqual(order([]), []);
  // A cancellation that names itself stays where it is.
  t.deepEqual(order([cancel(1, ID(1), ID(1))]), ['1']);
});

test('cancelTarget() reads the job a delivered job.cancel names, and nothing else', (t) => {
  t.is(cancelTarget(cancel(1, ID(1), ID(2)).msg), ID(2));
  t.is(cancelTarget(cmd(1, ID(1), 'service.restart', { job: ID(2) }).msg), undefined);
  t.is(cancelTarget(member(1).msg), undefined);
  t.is(cancelTarget(message('command-deliver', { jobId: 'x', command: null, expiresAt: '' })), undefined);
});
