// The peer executor between the checks and the agent: an admitted command reaches the agent
// exactly once and is answered with a bound, peer-signed result; a refused one reaches nothing.
// The agent here is a recording AgentApi (the executor is the part under test; the real agent
// is driven in test/fleet/fleet-*.test.ts).
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { secretContext } from '../../../control/wire/action-args.ts';
import {
  type Audience,
  buildCommand,
  type CommandAction,
  envelopeDigest,
} from '../../../control/wire/command.ts';
import { signMembership } from '../../../control/wire/membership.ts';
import { PeerExecutor } from '../../../agent/remote/peer-executor.ts';
import { verifyResult } from '../../../control/wire/result.ts';
import { type Envelope, readKemPrivateKey, sealSecret } from '../../../keys/index.ts';
import { tempDir } from '../../helpers.ts';
import { type FleetPki, type Id, makeFleetPki } from '../../control/command-fixture.ts';
import { recorder } from './recording-agent.ts';

const pkiP = makeFleetPki();

async function executor(t: Parameters<typeof tempDir>[0], p: FleetPki, peer: Id = p.p1) {
  const rec = recorder();
  const stateDir = await tempDir(t);
  const ex = new PeerExecutor({
    api: rec.api,
    stateDir,
    log: () => {},
    identity: {
      fleet: 'prod',
      peerId: peer.cert.peerId as string,
      key: peer.key,
      chain: peer.chain,
      kemPrivateKey: await readKemPrivateKey(peer.kemKeyPath as string),
      anchors: [p.root.cert],
      crls: [p.crl],
    },
  });
  await ex.load();
  const m = await ex.membership(
    signMembership({
      fleet: 'prod',
      group: 'web',
      peer: peer.cert.peerId as string,
      member: true,
      key: p.op.key,
      chain: p.op.chain,
    }),
    'web',
  );
  t.true(m.ok);
  return { ex, rec, stateDir };
}

const web: Audience = { fleet: 'prod', target: 'group:web', groups: ['web'], peers: ['p1'] };

// Each command takes the operator's next sequence number, as `mway` does (peers refuse reuse).
let seqs = 0;
function cmd(by: Id, action: CommandAction, args: Record<string, unknown> = {}, audience = web): Envelope {
  return buildCommand({ action, args, audience, seq: ++seqs, key: by.key, chain: by.chain });
}

test('an admitted command reaches the agent once and its result is bound to it', async (t) => {
  const p = await pkiP;
  const { ex, rec } = await executor(t, p);
  const env = cmd(p.op, 'service.restart', { service: 'hello' });
  const a = await ex.command(env);
  const id = (env.payload as { id: string }).id;
  const v = verifyResult(a.result, {
    anchors: [p.root.cert],
    expect: { command: id, commandDigest: envelopeDigest(env) },
  });
  t.is(v.payload.status, 'ok');
  t.deepEqual(rec.calls, ['restart hello']);
  // Delivered again (a broker restarting mid-job): refused as a replay, not run again, and the
  // original signed result rides along.
  const again = await ex.command(env);
  const r = verifyResult(again.result, { anchors: [p.root.cert] });
  t.is(r.payload.status, 'refused');
  t.is(r.payload.code, 'E_CMD_REPLAYED');
  t.deepEqual((r.payload.output as { previous: unknown }).previous, a.result);
  t.deepEqual(rec.calls, ['restart hello']);
});

test('a refused command reaches nothing and is answered with a signed refusal', async (t) => {
  const p = await pkiP;
  const { ex, rec } = await executor(t, p);
  const a = await ex.command(cmd(p.op, 'service.restart', { service: 'hello' }, { ...web, peers: ['p2'] }));
  const r = verifyResult(a.result, { anchors: [p.root.cert] });
  t.is(r.payload.status, 'refused');
  t.is(r.payload.code, 'E_CMD_NOT_ADDRESSED');
  const b = await ex.command({ v: 1, type: 'command', payload: {}, signatures: [] });
  t.is(verifyResult(b.result, { anchors: [p.root.cert] }).payload.code, 'E_CMD_SIGNATURE');
  t.deepEqual(rec.calls, []);
});

test('secrets sealed to this peer are opened and handed to the agent; moved or foreign ones are refused', async (t) => {
  const p = await pkiP;
  const { ex, rec } = await executor(t, p);
  const seal = (to: Id, target: string, name: string, value: string) =>
    sealSecret({
      plaintext: Buffer.from(value),
      recipient: to.cert,
      context: secretContext('prod', target, name),
      key: p.admin.key,
      chain: p.admin.chain,
    });
  const ok = await ex.command(
    cmd(p.admin, 'secrets.put', {
      target: 'hello',
      values: { DB_PASSWORD: seal(p.p1, 'hello', 'DB_PASSWORD', 's3cret') },
    }),
  );
  t.is(verifyResult(ok.result, { anchors: [p.root.cert] }).payload.status, 'ok');
  t.deepEqual(rec.secrets, { hello: { DB_PASSWORD: 's3cret' } });
  const other = await ex.command(
    cmd(p.admin, 'secrets.put', { target: 'hello', values: { X: seal(p.p2, 'hello', 'X', 'nope') } }),
  );
  t.is(verifyResult(other.result, { anchors: [p.root.cert] }).payload.code, 'E_ACTION_SECRET');
  const moved = await ex.command(
    cmd(p.admin, 'secrets.put', { target: 'db', values: { X: seal(p.p1, 'hello', 'X', 'nope') } }),
  );
  t.is(verifyResult(moved.result, { anchors: [p.root.cert] }).payload.code, 'E_ACTION_SECRET');
  t.deepEqual(Object.keys(rec.secrets), ['hello']);
});

test('layer chunks are installed only when they match the signed digest', async (t) => {
  const p = await pkiP;
  const { ex, rec } = await executor(t, p);
  const bytes = randomBytes(2 * 1024 * 1024 - 17);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const chunks = [0, 1].map((i) => bytes.subarray(i * 1024 * 1024, (i + 1) * 1024 * 1024).toString('base64'));
  const good = await ex.command(
    cmd(p.admin, 'layer.install', { name: 'hello', sha256, size: bytes.length, chunks }),
  );
  t.is(verifyResult(good.result, { anchors: [p.root.cert] }).payload.status, 'ok');
  t.true(rec.installed[0]?.equals(bytes));
  const wrong = await ex.command(
    cmd(p.admin, 'layer.install', {
      name: 'hello',
      sha256,
      size: bytes.length,
      chunks: chunks.slice().reverse(),
    }),
  );
  t.is(verifyResult(wrong.result, { anchors: [p.root.cert] }).payload.code, 'E_ACTION_DIGEST');
  t.is(rec.installed.length, 1);
});

test('layer.install of a set installs nothing until every layer arrived whole; bad sets are E_ACTION_ARGS', async (t) => {
  const p = await pkiP;
  const { ex, rec } = await executor(t, p);
  const layers = [randomBytes(3000), randomBytes(5000)].map((bytes) => ({
    bytes,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    size: bytes.length,
  }));
  const piece = (l: (typeof layers)[number], data = l.bytes) =>
    cmd(p.admin, 'layer.chunk', { sha256: l.sha256, size: l.size, offset: 0, data: data.toString('base64') });
  const set = cmd(p.admin, 'layer.install', { layers: layers.map(({ sha256, size }) => ({ sha256, size })) });
  const code = async (c: Envelope) =>
    verifyResult((await ex.command(c)).result, { anchors: [p.root.cert] }).payload;
  // Only the first layer's piece arrived: the set is refused before anything is installed.
  t.is((await code(piece(layers[0] as never))).status, 'ok');
  t.like(await code(set), { status: 'failed', code: 'E_ACTION_ARGS' });
  t.is(rec.installed.length, 0);
  // The second's piece arrives altered: its digest is wrong, still nothing is installed.
  const second = layers[1] as (typeof layers)[number];
  await ex.command(piece(second, Buffer.concat([second.bytes.subarray(1), Buffer.from('x')])));
  t.is((await code(piece(layers[0] as never))).status, 'ok');
  const altered = cmd(p.admin, 'layer.install', {
    layers: layers.map(({ sha256, size }) => ({ sha256, size })),
  });
  t.like(await code(altered), { status: 'failed', code: 'E_ACTION_DIGEST' });
  t.is(rec.installed.length, 0);
  // Both whole: installed in the command's order, one output for the set.
  for (const l of layers) await ex.command(piece(l));
  const ok = await code(
    cmd(p.admin, 'layer.install', { layers: layers.map(({ sha256, size }) => ({ sha256, size })) }),
  );
  t.is(ok.status, 'ok');
  t.is((ok.output as { layers: unknown[] }).layers.length, 2);
  t.deepEqual(
    rec.installed,
    layers.map((l) => l.bytes),
  );
  const one = layers[0] as (typeof layers)[number];
  for (const args of [
    { layers: [] },
    { layers: 'x' },
    { layers: [one, one].map(({ sha256, size }) => ({ sha256, size })) },
    { layers: [{ sha256: one.sha256, size: one.size }], sha256: one.sha256 },
    { layers: [{ sha256: 'nope', size: 1 }] },
    { layers: Array.from({ length: 33 }, () => ({ sha256: one.sha256, size: one.size })) },
  ]) {
    t.like(
      await code(cmd(p.admin, 'layer.install', args)),
      { status: 'failed', code: 'E_ACTION_ARGS' },
      JSON.stringify(args).slice(0, 80),
    );
  }
  t.is(rec.installed.length, 2);
});

test('exec runs with an explicit exec scope and its output is returned', async (t) => {
  const p = await pkiP;
  const { ex } = await executor(t, p);
  const a = await ex.command(cmd(p.execOp, 'exec', { argv: ['echo', 'hello from exec'] }));
  const r = verifyResult(a.result, { anchors: [p.root.cert] }).payload;
  t.is(r.status, 'ok');
  t.is((r.output as { stdout: string }).stdout, 'hello from exec\n');
  const refused = await ex.command(cmd(p.admin, 'exec', { argv: ['echo', 'x'] }));
  t.is(verifyResult(refused.result, { anchors: [p.root.cert] }).payload.code, 'E_CMD_SCOPE_ACTION');
});

test('reboot answers first and reboots after', async (t) => {
  const p = await pkiP;
  const { ex, rec } = await executor(t, p);
  const a = await ex.command(cmd(p.admin, 'reboot'));
  t.deepEqual(rec.calls, []);
  await a.after?.();
  t.deepEqual(rec.calls, ['reboot']);
});

test('signed status names the peer and its groups', async (t) => {
  const p = await pkiP;
  const { ex } = await executor(t, p);
  const s = await ex.status();
  t.deepEqual((s.payload as { groups: string[] }).groups, ['web']);
});

test('when the replay cache cannot be written the command is refused with E_PEER_STATE and not run', async (t) => {
  const p = await pkiP;
  const { ex, rec, stateDir } = await executor(t, p);
  // A directory where the cache file goes: appending to it fails.
  await rm(join(stateDir, 'replay-cache.log'), { force: true });
  await mkdir(join(stateDir, 'replay-cache.log', 'x'), { recursive: true });
  const a = await ex.command(cmd(p.op, 'service.restart', { service: 'hello' }));
  t.is(verifyResult(a.result, { anchors: [p.root.cert] }).payload.code, 'E_PEER_STATE');
  t.deepEqual(rec.calls, []);
});

// The audit's finding: a certificate with a malformed extension escaped the decoder uncoded, and
// the executor took the uncoded error for its own state failing (E_PEER_STATE, blaming its disk).
test('a broker-injected command whose leaf has a malformed extension is refused with a keys verdict, not E_PEER_STATE', async (t) => {
  const p = await pkiP;
  const { ex, rec } = await executor(t, p);
  const env = cmd(p.op, 'service.restart', { service: 'hello' });
  const der = Buffer.from(p.op.cert.der);
  // basicConstraints (OID 2.5.29.19): its extnValue's inner SEQUENCE tag becomes OCTET STRING.
  const oid = der.indexOf(Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x13]));
  t.true(oid > 0, 'the operator certificate has basicConstraints');
  const inner = der.indexOf(0x30, der.indexOf(0x04, oid + 5));
  der[inner] = 0x04;
  const sig = env.signatures[0] as Envelope['signatures'][number];
  const forged: Envelope = {
    ...env,
    signatures: [
      {
        ...sig,
        chain: [der.toString('base64'), ...sig.chain.slice(1)],
        signer: createHash('sha256').update(der).digest('hex'),
      },
    ],
  };
  const a = await ex.command(forged);
  const v = verifyResult(a.result, { anchors: [p.root.cert] });
  t.is(v.payload.status, 'refused');
  t.is(v.payload.code, 'E_CMD_OPERATOR_UNTRUSTED', String(v.payload.message));
  // The message names the damaged extension (keys/x509-asn1.ts reads each one itself).
  t.regex(String(v.payload.message), /basicConstraints is not a SEQUENCE/);
  t.deepEqual(rec.calls, []);
});

test('a layer sent as layer.chunk commands in any order is installed once whole; a missing piece fails the digest', async (t) => {
  const p = await pkiP;
  const { ex, rec } = await executor(t, p);
  const bytes = randomBytes(2 * 1024 * 1024 + 99);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const size = bytes.length;
  const piece = (offset: number) =>
    cmd(p.admin, 'layer.chunk', {
      sha256,
      size,
      offset,
      data: bytes.subarray(offset, offset + 1024 * 1024).toString('base64'),
    });
  for (const off of [2 * 1024 * 1024, 0, 1024 * 1024]) {
    t.is(
      verifyResult((await ex.command(piece(off))).result, { anchors: [p.root.cert] }).payload.status,
      'ok',
    );
  }
  const ok = await ex.command(cmd(p.admin, 'layer.install', { sha256, size }));
  t.is(verifyResult(ok.result, { anchors: [p.root.cert] }).payload.status, 'ok');
  t.true(rec.installed[0]?.equals(bytes));
  // Again with a piece missing: the install is refused on the digest.
  await ex.command(piece(0));
  await ex.command(piece(2 * 1024 * 1024));
  const bad = await ex.command(cmd(p.admin, 'layer.install', { sha256, size }));
  t.is(verifyResult(bad.result, { anchors: [p.root.cert] }).payload.code, 'E_ACTION_DIGEST');
  // A piece that does not fit the announced size is refused before anything is written.
  const over = await ex.command(
    cmd(p.admin, 'layer.chunk', { sha256, size: 10, offset: 5, data: Buffer.alloc(8).toString('base64') }),
  );
  t.is(verifyResult(over.result, { anchors: [p.root.cert] }).payload.code, 'E_ACTION_ARGS');
  t.is(rec.installed.length, 1);
});
