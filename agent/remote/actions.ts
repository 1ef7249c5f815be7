// The allow-listed actions a checked command may run on a peer (doc/commands.md, "Actions"),
// each mapped onto the agent's AgentApi. Arguments are validated here, because the operator's
// signature says who asked, not that the request is sane. Outputs are bounded in size.
import { createHash, randomBytes } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage, isMilkyWayError, MilkyWayError, run } from '../../common/index.ts';
import {
  type CommandAction,
  type CommandPayload,
  ControlError,
  isName,
  MAX_BUNDLE_BYTES,
  MAX_EXEC_OUTPUT,
  MAX_EXEC_TIMEOUT_MS,
  MAX_INLINE_LAYER_BYTES,
  MAX_LAYER_BYTES,
  MAX_LAYER_SET,
  MAX_LIFETIME_MS,
  MAX_LOG_LINES,
  MAX_SECRETS,
  parseModuleRunArgs,
  secretContext,
} from '../../control/wire/index.ts';
import { type Certificate, type Crl, openSecret, type SealedSecret } from '../../keys/index.ts';
import { UpdateError } from '../../update/index.ts';
import type { AgentApi } from '../core/agent-api.ts';

export interface ActionContext {
  api: AgentApi;
  fleet: string;
  /** This peer's certificate (recipient of sealed secrets) and ML-KEM private key. */
  peerCert: Certificate;
  kemPrivateKey: import('node:crypto').KeyObject;
  anchors: readonly Certificate[];
  crls: readonly Crl[];
  /** Where a layer's chunks are assembled before the agent installs it. */
  spoolDir: string;
  /**
   * Installs a CRL pushed with `crl.install` (the peer link keeps it in its writable state
   * and puts it in force at once); returns what is in force afterwards.
   */
  installCrl?: (der: Uint8Array) => Promise<unknown>;
  /**
   * Claims a command id as cancelled until `keepUntil` (`job.cancel`): `cancelled`, or
   * `already-received` when this peer had it already (it ran, or is running).
   */
  cancel?: (id: string, keepUntil: string) => Promise<'cancelled' | 'already-received'>;
  /**
   * Brings a layer's bytes from out of band (a blob store) to a local file and returns its
   * path, for layers sent without inline chunks. The digest is checked here again.
   */
  fetchBlob?: (sha256: string, size: number) => Promise<string>;
}

export interface ActionOutcome {
  output: unknown;
  /**
   * The action ran but did not succeed (a command that exited non-zero): the result is
   * `failed` with this code, and the output is kept so the operator sees why.
   */
  failure?: { code: string; message: string };
  /** Runs after the result is sent (reboot/poweroff must answer before going down). */
  after?: () => Promise<void>;
}

function bad(action: string, message: string): never {
  throw new ControlError('E_ACTION_ARGS', `Bad arguments for ${action}: ${message}`);
}

function str(args: Record<string, unknown>, key: string, action: string): string {
  const v = args[key];
  if (
    !isName(v) &&
    !(typeof v === 'string' && /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}\/[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(v))
  ) {
    bad(action, `${key} must be a name`);
  }
  return v;
}

function intArg(
  args: Record<string, unknown>,
  key: string,
  action: string,
  dflt: number,
  max: number,
): number {
  const v = args[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max)
    bad(action, `${key} must be 1..${max}`);
  return v;
}

function truncate(s: string, max: number): { text: string; truncated: boolean } {
  const b = Buffer.from(s);
  return b.length <= max
    ? { text: s, truncated: false }
    : { text: b.subarray(b.length - max).toString(), truncated: true };
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  // Streamed: layers may be gigabytes.
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Update bundles spool under their own suffix, so `coreos.cancel` drops them and no layer. */
const BUNDLE_PART = '.mwu.part';

/** The spool file a layer's (or bundle's) separately sent chunks are written into. */
function partPath(ctx: ActionContext, sha: string, action = 'layer'): string {
  return join(ctx.spoolDir, `${sha}${action.startsWith('coreos.') ? BUNDLE_PART : '.part'}`);
}

function layerIdentity(
  args: Record<string, unknown>,
  action: string,
  max = MAX_LAYER_BYTES,
): { sha: string; size: number } {
  const sha = args.sha256;
  const size = args.size;
  if (typeof sha !== 'string' || !/^[0-9a-f]{64}$/.test(sha)) bad(action, 'sha256 must be 64 hex digits');
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 1 || size > max) {
    bad(action, `size must be 1..${max}`);
  }
  return { sha, size };
}

/**
 * One piece of a layer too large for one command (`layer.chunk`): written at its offset into
 * the spool file; the later `layer.install` checks the whole file against the signed digest,
 * so a dropped, reordered or repeated piece can only make the install fail.
 */
async function layerChunk(
  args: Record<string, unknown>,
  ctx: ActionContext,
  action = 'layer.chunk',
  max = MAX_LAYER_BYTES,
  /** Run on the first piece before it is stored (a bundle's signed manifest is in it). */
  checkHead?: (head: Uint8Array) => Promise<void>,
): Promise<unknown> {
  const { sha, size } = layerIdentity(args, action, max);
  const offset = args.offset;
  const data = args.data;
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0 || offset >= size) {
    bad(action, `offset must be 0..${size - 1}`);
  }
  if (typeof data !== 'string' || data.length === 0) bad(action, 'data must be base64');
  const bytes = Buffer.from(data, 'base64');
  if (bytes.length > MAX_INLINE_LAYER_BYTES || offset + bytes.length > size) {
    bad(action, `chunk of ${bytes.length} bytes at ${offset} does not fit a layer of ${size} bytes`);
  }
  if (offset === 0 && checkHead !== undefined) await checkHead(bytes);
  const part = partPath(ctx, sha, action);
  // A bundle's later piece needs its first one here: after `mway update --cancel` (or a lost
  // spool) the rest of that send stops at once instead of travelling to fail its digest.
  if (offset > 0 && checkHead !== undefined && (await stat(part).catch(() => undefined)) === undefined)
    throw new UpdateError(
      'E_UPDATE_CANCELLED',
      `Piece at ${offset} of bundle ${sha.slice(0, 12)}: this peer holds none of its earlier pieces (the update was cancelled, or its spool lost); send the bundle again`,
    );
  await mkdir(ctx.spoolDir, { recursive: true, mode: 0o700 });
  const fh = await open(part, constants.O_WRONLY | constants.O_CREAT, 0o600);
  try {
    await fh.write(bytes, 0, bytes.length, offset);
  } finally {
    await fh.close();
  }
  return { sha256: sha, offset, bytes: bytes.length };
}

/** Writes the inline chunks (base64, in order) to a spool file, or asks fetchBlob. */
async function layerBytes(
  args: Record<string, unknown>,
  sha: string,
  size: number,
  ctx: ActionContext,
  action = 'layer.install',
): Promise<string> {
  const chunks = args.chunks;
  if (chunks === undefined) {
    if (ctx.fetchBlob !== undefined) return ctx.fetchBlob(sha, size);
    // Sent before as `layer.chunk` commands.
    const part = partPath(ctx, sha, action);
    try {
      await stat(part);
    } catch {
      bad(action, `no chunks inline and none received for ${sha}`);
    }
    return part;
  }
  if (!Array.isArray(chunks) || chunks.length === 0 || !chunks.every((c) => typeof c === 'string')) {
    bad(action, 'chunks must be a non-empty array of base64 strings');
  }
  if (size > MAX_INLINE_LAYER_BYTES) bad(action, `inline layers are at most ${MAX_INLINE_LAYER_BYTES} bytes`);
  await mkdir(ctx.spoolDir, { recursive: true, mode: 0o700 });
  const path = join(ctx.spoolDir, `${sha}.${randomBytes(4).toString('hex')}.mwl`);
  const fh = await open(path, 'wx', 0o600);
  let written = 0;
  try {
    for (const c of chunks as string[]) {
      const b = Buffer.from(c, 'base64');
      written += b.length;
      if (written > size) break;
      await fh.write(b);
    }
  } finally {
    await fh.close();
  }
  return path;
}

/** The signed command names the digest; what the broker streamed must match it exactly. */
async function checkSignedDigest(
  path: string,
  sha: string,
  size: number,
  what: 'Layer' | 'Bundle',
): Promise<void> {
  const st = await stat(path);
  const got = await sha256File(path);
  if (st.size !== size || got !== sha) {
    throw new ControlError(
      'E_ACTION_DIGEST',
      `${what} bytes do not match the signed digest: got ${got} (${st.size} bytes), command says ${sha} (${size} bytes)`,
    );
  }
}

async function installLayer(args: Record<string, unknown>, ctx: ActionContext): Promise<unknown> {
  const { sha, size } = layerIdentity(args, 'layer.install');
  const path = await layerBytes(args, sha, size, ctx);
  try {
    await checkSignedDigest(path, sha, size, 'Layer');
    // installLayer verifies the layer's own signature against the certificate partition.
    return await ctx.api.installLayer(path);
  } finally {
    await rm(path, { force: true });
  }
}

/**
 * `layer.install` of a set (`layers: [{sha256, size}, …]`, `mway compose up`): one signed
 * command, so one rollout, for layers that belong together. Every layer's pieces must have
 * arrived and match their signed digests before the first is installed; they are installed in
 * the command's order (a service's dependencies first). When one fails, the layers this
 * command added are removed again, newest first, and the error keeps the failed layer's code;
 * a layer it upgraded keeps the new version (the old file is gone), which the message says.
 */
async function installLayerSet(args: Record<string, unknown>, ctx: ActionContext): Promise<unknown> {
  const a = 'layer.install';
  const list = args.layers;
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_LAYER_SET)
    bad(a, `layers must be 1..${MAX_LAYER_SET} entries`);
  for (const k of ['sha256', 'size', 'chunks'])
    if (k in args) bad(a, `layers and ${k} do not go together (the set names each layer's digest)`);
  const ids = (list as unknown[]).map((l, i) => {
    if (typeof l !== 'object' || l === null || Array.isArray(l)) bad(a, `layers[${i}] must be an object`);
    return layerIdentity(l as Record<string, unknown>, `${a} layers[${i}]`);
  });
  if (new Set(ids.map((x) => x.sha)).size !== ids.length) bad(a, 'layers names a layer twice');
  const paths: string[] = [];
  try {
    for (const { sha, size } of ids) {
      const path = await layerBytes({}, sha, size, ctx);
      paths.push(path);
      await checkSignedDigest(path, sha, size, 'Layer');
    }
    const before = new Set((await ctx.api.listLayers()).map((l) => l.name));
    const installed: Array<{ name: string }> = [];
    for (const [i, path] of paths.entries()) {
      try {
        installed.push((await ctx.api.installLayer(path)) as { name: string });
      } catch (e) {
        const added = installed.filter((l) => !before.has(l.name)).reverse();
        const upgraded = installed.filter((l) => before.has(l.name)).map((l) => l.name);
        const notRemoved: string[] = [];
        for (const l of added) await ctx.api.removeLayer(l.name).catch(() => notRemoved.push(l.name));
        const code = isMilkyWayError(e) ? e.code : 'E_ACTION_FAILED';
        const undone = [
          added.length === 0 ? '' : `; removed again: ${added.map((l) => l.name).join(', ')}`,
          upgraded.length === 0 ? '' : `; kept upgraded: ${upgraded.join(', ')}`,
          notRemoved.length === 0 ? '' : `; could not remove: ${notRemoved.join(', ')}`,
        ].join('');
        throw new MilkyWayError(
          code,
          `Layer ${i + 1} of ${paths.length} (${ids[i]?.sha.slice(0, 12)}) not installed: ${errorMessage(e)}${undone}`,
          { cause: e, details: { index: i, installed: installed.map((l) => l.name) } },
        );
      }
    }
    return { layers: installed };
  } finally {
    for (const p of paths) await rm(p, { force: true });
  }
}

/**
 * `coreos.update`: the update bundle's bytes (inline, or sent before as `coreos.chunk`
 * pieces) checked against the signed digest, then verified and written into the inactive
 * slot by the agent (doc/how-to-update.md); the reboot into the trial follows the signed
 * result unless the command says `reboot: false` (`mway update --no-reboot`).
 */
async function updateCoreos(args: Record<string, unknown>, ctx: ActionContext): Promise<ActionOutcome> {
  const a = 'coreos.update';
  const { sha, size } = layerIdentity(args, a, MAX_BUNDLE_BYTES);
  if (args.reboot !== undefined && typeof args.reboot !== 'boolean') bad(a, 'reboot must be true or false');
  const path = await layerBytes(args, sha, size, ctx, a);
  let output: Record<string, unknown>;
  try {
    await checkSignedDigest(path, sha, size, 'Bundle');
    output = await ctx.api.updateCoreos(path, ...downgradeOf(args, sha));
  } finally {
    await rm(path, { force: true });
  }
  const reboot = args.reboot !== false;
  return { output: { ...output, rebooting: reboot }, ...(reboot ? { after: () => ctx.api.reboot() } : {}) };
}

/** A `permit` argument (a user-signed downgrade permit, update/downgrade-permit.ts) with the bundle's digest. */
function downgradeOf(args: Record<string, unknown>, sha: string): [] | [{ permit: unknown; sha256: string }] {
  return args.permit === undefined ? [] : [{ permit: args.permit, sha256: sha }];
}

/** `coreos.cancel`: the agent stops or disarms the update; every spooled bundle piece goes. */
async function cancelCoreos(ctx: ActionContext): Promise<unknown> {
  const out = await ctx.api.cancelCoreosUpdate();
  const parts = (await readdir(ctx.spoolDir).catch(() => [] as string[])).filter((f) =>
    f.endsWith(BUNDLE_PART),
  );
  for (const f of parts) await rm(join(ctx.spoolDir, f), { force: true });
  const change = parts.length > 0 ? 'changed' : (out.change as string | undefined);
  return { ...out, spooledBundles: parts.length, change };
}

async function putSecrets(p: CommandPayload, ctx: ActionContext): Promise<unknown> {
  const target = str(p.args, 'target', 'secrets.put');
  const values = p.args.values;
  if (typeof values !== 'object' || values === null || Array.isArray(values))
    bad('secrets.put', 'values must be an object');
  const entries = Object.entries(values as Record<string, unknown>);
  if (entries.length === 0 || entries.length > MAX_SECRETS) bad('secrets.put', `1..${MAX_SECRETS} values`);
  const plain: Record<string, Uint8Array> = {};
  for (const [name, value] of entries) {
    if (!isName(name)) bad('secrets.put', `secret name ${JSON.stringify(name)} is not a name`);
    // One command for many peers carries each value sealed per peer: `{name: {peerId: sealed}}`.
    const perPeer = typeof value === 'object' && value !== null && !('signatures' in value);
    const sealed = perPeer ? (value as Record<string, unknown>)[ctx.peerCert.peerId ?? ''] : value;
    if (sealed === undefined) bad('secrets.put', `${name} carries no value sealed to this peer`);
    try {
      plain[name] = openSecret(sealed as SealedSecret, {
        kemPrivateKey: ctx.kemPrivateKey,
        recipient: ctx.peerCert,
        context: secretContext(ctx.fleet, target, name),
        anchors: ctx.anchors,
        crls: ctx.crls,
      });
    } catch (e) {
      throw new ControlError(
        'E_ACTION_SECRET',
        `Cannot open secret ${name} for ${target}: ${(e as Error).message}`,
        {
          cause: e,
        },
      );
    }
  }
  await ctx.api.putSecrets(target, plain);
  return { target, written: Object.keys(plain).sort() };
}

async function exec(args: Record<string, unknown>): Promise<unknown> {
  const argv = args.argv;
  if (
    !Array.isArray(argv) ||
    argv.length === 0 ||
    argv.length > 256 ||
    !argv.every((a) => typeof a === 'string')
  ) {
    bad('exec', 'argv must be 1..256 strings');
  }
  const timeout = intArg(args, 'timeoutMs', 'exec', 30_000, MAX_EXEC_TIMEOUT_MS);
  const [tool, ...rest] = argv as string[];
  const r = await run(tool as string, rest, { timeout, reject: false });
  const out = truncate(r.stdout, MAX_EXEC_OUTPUT);
  const err = truncate(r.stderr, MAX_EXEC_OUTPUT);
  return {
    exitCode: r.exitCode,
    stdout: out.text,
    stderr: err.text,
    truncated: out.truncated || err.truncated,
  };
}

/** Runs one action; throws ControlError (or the agent's error) when it fails. */
export async function runAction(p: CommandPayload, ctx: ActionContext): Promise<ActionOutcome> {
  const a: CommandAction = p.action;
  const api = ctx.api;
  switch (a) {
    case 'status':
      return {
        output: {
          agent: await api.status(),
          layers: await api.listLayers(),
          services: await api.listServices(),
        },
      };
    case 'service.list':
      return { output: await api.listServices() };
    case 'service.status':
      return { output: await api.getService(str(p.args, 'service', a)) };
    case 'service.start':
    case 'service.stop':
    case 'service.restart': {
      const name = str(p.args, 'service', a);
      if (a === 'service.start') await api.startService(name);
      else if (a === 'service.stop') await api.stopService(name);
      else await api.restartService(name);
      return { output: await api.getService(name) };
    }
    case 'service.enable':
    case 'service.disable': {
      // Idempotent like Salt's service.enabled: applying it again reports `unchanged`.
      const name = str(p.args, 'service', a);
      const r = await api.setServiceEnabled(name, a === 'service.enable');
      return {
        output: {
          service: name,
          state: r.enabled ? 'enabled' : 'disabled',
          change: r.changed ? 'changed' : 'unchanged',
        },
      };
    }
    case 'service.logs': {
      const name = str(p.args, 'service', a);
      return { output: await api.logs(name, { lines: intArg(p.args, 'lines', a, 100, MAX_LOG_LINES) }) };
    }
    case 'layer.install':
      return { output: await (p.args.layers === undefined ? installLayer : installLayerSet)(p.args, ctx) };
    case 'layer.chunk':
      return { output: await layerChunk(p.args, ctx) };
    case 'layer.remove': {
      // Idempotent: a layer that is not there is what was asked for (`absent`), not a failure.
      const name = str(p.args, 'layer', a);
      if (!(await api.listLayers()).some((l) => l.name === name))
        return { output: { layer: name, state: 'absent', change: 'unchanged' } };
      await api.removeLayer(name);
      return { output: { layer: name, state: 'removed' } };
    }
    case 'secrets.put':
      return { output: await putSecrets(p, ctx) };
    case 'reboot':
      return { output: { rebooting: true }, after: () => api.reboot() };
    case 'poweroff':
      return { output: { poweringOff: true }, after: () => api.poweroff() };
    case 'coreos.update':
      return updateCoreos(p.args, ctx);
    case 'coreos.rollback': {
      if (p.args.reboot !== undefined && typeof p.args.reboot !== 'boolean')
        bad(a, 'reboot must be true or false');
      const out = await api.rollbackCoreos();
      const reboot = p.args.reboot !== false;
      return { output: { ...out, rebooting: reboot }, ...(reboot ? { after: () => api.reboot() } : {}) };
    }
    case 'coreos.cancel':
      return { output: await cancelCoreos(ctx) };
    case 'coreos.chunk':
      // A replayed, older or foreign bundle is refused on its first piece, not after all of it.
      return {
        output: await layerChunk(p.args, ctx, a, MAX_BUNDLE_BYTES, (head) =>
          ctx.api.checkCoreosBundleHead(head, ...downgradeOf(p.args, String(p.args.sha256))),
        ),
      };
    case 'crl.install': {
      const b64 = p.args.crl;
      if (
        typeof b64 !== 'string' ||
        b64.length === 0 ||
        b64.length > 6 * 1024 * 1024 ||
        !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)
      )
        bad(a, 'crl must be a CRL file in base64 (DER, or PEM followed by its issuer chain)');
      if (ctx.installCrl === undefined) bad(a, 'this peer cannot store CRLs');
      return { output: await ctx.installCrl(new Uint8Array(Buffer.from(b64, 'base64'))) };
    }
    case 'job.cancel': {
      const job = p.args.job;
      const until = p.args.until;
      if (typeof job !== 'string' || !/^[0-9a-f]{32}$/.test(job)) bad(a, 'job must be a command id');
      if (typeof until !== 'string' || Number.isNaN(Date.parse(until))) bad(a, 'until must be a time');
      if (ctx.cancel === undefined) bad(a, 'this peer cannot cancel');
      // Kept at most as long as any command may live (the replay cache's own bound).
      const keep = new Date(Math.min(Date.parse(until), Date.now() + MAX_LIFETIME_MS)).toISOString();
      return { output: { job, state: await ctx.cancel(job, keep) } };
    }
    case 'module.run':
      return api.runModule(parseModuleRunArgs(p.args));
    case 'exec': {
      const out = (await exec(p.args)) as { exitCode: number };
      if (out.exitCode === 0) return { output: out };
      // A command that exits non-zero failed: the operator's summary and exit code say so,
      // with the exit status and the output beside it.
      const tool = (p.args.argv as string[])[0] ?? '';
      return { output: out, failure: { code: 'E_EXEC_EXIT', message: `${tool} exited ${out.exitCode}` } };
    }
  }
}
