// Pack-time check of a layer's SELinux CIL module: the module's own rules (policy-module.ts:
// only its own types), then secilc compiles it into the whole policy the device would load —
// the base (layers/selinux/), the layer's generated types, its module in its block, and one
// other layer whose neverallow rules it must also respect (doc/selinux.md). A module that does
// not compile, or breaks a neverallow rule, never reaches a signature.
import { LayerError } from './layer-error.ts';
import { checkModule } from './policy-module.ts';
import { compileSources, policySources } from './selinux-policy.ts';

/**
 * Throws E_POLICY_INVALID (naming `source`, the line and the reason) when `bytes` are not a
 * module layer `layer` may ship, E_POLICY_CHECKER_MISSING when secilc is not installed.
 */
export async function checkPolicy(bytes: Uint8Array, source: string, layer: string): Promise<void> {
  const text = Buffer.from(bytes).toString('utf8');
  checkModule(text, layer, source);
  const sources = await policySources([{ name: layer, module: bytes }], [], { placeholder: true });
  try {
    await compileSources(sources, { timeoutMs: 120_000 });
  } catch (e) {
    // secilc's words name the module as <layer>/policy.cil; say the file the packager has.
    if (e instanceof LayerError && e.code === 'E_POLICY_INVALID') {
      const d = e.details as { line?: number; layer?: string; secilc?: string } | undefined;
      if (d?.layer === layer) {
        const line = d.line ?? 1;
        const said = e.message.slice(e.message.indexOf(': ') + 2);
        throw new LayerError('E_POLICY_INVALID', `${source}:${line}: ${said}`, {
          path: source,
          cause: e,
          details: { line, ...(d.secilc === undefined ? {} : { secilc: d.secilc }) },
        });
      }
      throw new LayerError('E_POLICY_INVALID', `${source}: ${e.message}`, {
        path: source,
        cause: e,
        ...(e.details === undefined ? {} : { details: e.details }),
      });
    }
    throw e;
  }
}
