// The limits of the allow-listed actions' arguments (doc/commands.md, "Actions"), shared by
// the operator, which splits and seals what it sends to fit them, and the peer, which
// refuses what does not (agent/remote/actions.ts).

export const MAX_LOG_LINES = 1000;
export const MAX_EXEC_OUTPUT = 256 * 1024;
export const MAX_EXEC_TIMEOUT_MS = 300_000;
export const MAX_SECRETS = 64;
export const MAX_LAYER_BYTES = 4 * 1024 * 1024 * 1024;
/**
 * Layers up to this size travel inside the install command; larger ones as `layer.chunk`
 * commands of this size. Small enough that a few such envelopes fit one 17 MiB protocol frame
 * (job and audit replies), far below keys/' 16 MiB envelope cap.
 */
export const MAX_INLINE_LAYER_BYTES = 2 * 1024 * 1024;
export const LAYER_CHUNK_BYTES = 1024 * 1024;
/** Layers one `layer.install` may install as a set (`mway compose up`: one per service). */
export const MAX_LAYER_SET = 32;
/** An update bundle (doc/update-bundle.md): CoreOS, its tree and signature. */
export const MAX_BUNDLE_BYTES = 16 * 1024 * 1024 * 1024;

/** Context a sealed secret value is bound to: moving it to another key or group breaks it. */
export function secretContext(fleet: string, target: string, name: string): string {
  return `milkyway/v1/secret/${fleet}/${target}/${name}`;
}
