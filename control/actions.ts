// The allow-listed actions a checked command may run on a peer (doc/commands.md, "Actions"),
// each mapped onto the agent's AgentApi. Arguments are validated here, because the operator's
// signature says who asked, not that the request is sane. Outputs are bounded in size.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentApi } from '../agent/agent-api.ts';
import { run } from '../common/exec.ts';
import { type Certificate, type Crl, openSecret, type SealedSecret } from '../keys/index.ts';
import type { CommandAction, CommandPayload } from './command.ts';
import { isName } from './command.ts';
import { ControlError } from './control-error.ts';

export const MAX_LOG_LINES = 1000;
export const MAX_EXEC_OUTPUT = 256 * 1024;
export const MAX_EXEC_TIMEOUT_MS = 300_000;
export const MAX_SECRETS = 64;
export const MAX_LAYER_BYTES = 4 * 1024 * 1024 * 1024;
/** A command envelope is at most 16 MiB (keys/), so inline layers are at most this big. */
export const MAX_INLINE_LAYER_BYTES = 11 * 1024 * 1024;
export const LAYER_CHUNK_BYTES = 1024 * 1024;

/** Context a sealed secret value is bound to: moving it to another key or group breaks it. */
export function secretContext(fleet: string, target: string, name: string): string {
  return `milkyway/v1/secret/${fleet}/${target}/${name}`;
}

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
   * Brings a layer's bytes from out of band (a blob store) to a local file and returns its
   * path, for layers sent without inline chunks. The digest is checked here again.
   */
  fetchBlob?: (sha256: string, size: number) => Promise<string>;
}

export interface ActionOutcome {
  output: unknown;
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
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

/** Writes the inline chunks (base64, in order) to a spool file, or asks fetchBlob. */
async function layerBytes(
  args: Record<string, unknown>,
  sha: string,
  size: number,
  ctx: ActionContext,
): Promise<string> {
  const chunks = args.chunks;
  if (chunks === undefined) {
    if (ctx.fetchBlob === undefined) bad('layer.install', 'no chunks and no blob store on this link');
    return ctx.fetchBlob(sha, size);
  }
  if (!Array.isArray(chunks) || chunks.length === 0 || !chunks.every((c) => typeof c === 'string')) {
    bad('layer.install', 'chunks must be a non-empty array of base64 strings');
  }
  if (size > MAX_INLINE_LAYER_BYTES)
    bad('layer.install', `inline layers are at most ${MAX_INLINE_LAYER_BYTES} bytes`);
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

async function installLayer(args: Record<string, unknown>, ctx: ActionContext): Promise<unknown> {
  const sha = args.sha256;
  const size = args.size;
  if (typeof sha !== 'string' || !/^[0-9a-f]{64}$/.test(sha))
    bad('layer.install', 'sha256 must be 64 hex digits');
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 1 || size > MAX_LAYER_BYTES) {
    bad('layer.install', `size must be 1..${MAX_LAYER_BYTES}`);
  }
  const path = await layerBytes(args, sha, size, ctx);
  try {
    // The signed command names the digest; what the broker streamed must match it exactly.
    const st = await stat(path);
    const got = await sha256File(path);
    if (st.size !== size || got !== sha) {
      throw new ControlError(
        'E_ACTION_DIGEST',
        `Layer bytes do not match the signed digest: got ${got} (${st.size} bytes), command says ${sha} (${size} bytes)`,
      );
    }
    // installLayer verifies the layer's own signature against the certificate partition.
    return await ctx.api.installLayer(path);
  } finally {
    await rm(path, { force: true });
  }
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
    case 'service.logs': {
      const name = str(p.args, 'service', a);
      return { output: await api.logs(name, { lines: intArg(p.args, 'lines', a, 100, MAX_LOG_LINES) }) };
    }
    case 'layer.install':
      return { output: await installLayer(p.args, ctx) };
    case 'layer.remove': {
      const name = str(p.args, 'layer', a);
      await api.removeLayer(name);
      return { output: { removed: name } };
    }
    case 'secrets.put':
      return { output: await putSecrets(p, ctx) };
    case 'reboot':
      return { output: { rebooting: true }, after: () => api.reboot() };
    case 'poweroff':
      return { output: { poweringOff: true }, after: () => api.poweroff() };
    case 'exec':
      return { output: await exec(p.args) };
  }
}
