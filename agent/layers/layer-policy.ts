// The loaded SELinux policy follows the installed layers (doc/selinux.md, "Runtime installs"):
// the initramfs loads CoreOS's policy, compiled at image build for the preinstalled layers and
// the secure config's groups (its inputs in /etc/selinux/milkyway/policy.json); whenever the
// layers to run or the groups differ from what is loaded, the agent compiles the policy again
// with CoreOS's own secilc and base (layers/selinux/ in CoreOS) and loads it. A layer whose
// module does not compile (a neverallow breach, a rule about another layer's types) is refused
// and the rest compiled without it; nothing is loaded unless the compile succeeded, so a bad
// install leaves the running policy exactly as it was.
import { mkdir, readFile } from 'node:fs/promises';
import type { LogFn } from '../core/agent-log.ts';
import { loadedPolicyDigest, loadPolicy } from '../core/selinux-state.ts';
import type { LayersModule } from './layers-contract.ts';

export interface PolicyLayer {
  name: string;
  module: Uint8Array | undefined;
}

export type PolicyCompiler = Pick<LayersModule, 'compilePolicy' | 'policyInputs'>;
type PolicyInputs = Awaited<ReturnType<LayersModule['policyInputs']>>;

export interface PolicyKeeperOptions {
  /** CoreOS's /etc/selinux/milkyway: policy.json says what its policy.33 holds. */
  policyDir: string;
  /** Where secilc works (CoreOS's /tmp is read-only). */
  workDir: string;
  selinuxfs: string;
  log: LogFn;
}

export class PolicyKeeper {
  readonly #o: PolicyKeeperOptions;
  #loaded: PolicyInputs | undefined;
  #digest: string | undefined;

  constructor(o: PolicyKeeperOptions) {
    this.#o = o;
  }

  /** What the loaded policy was compiled from (CoreOS's policy.json until the agent loads one). */
  async loaded(): Promise<PolicyInputs> {
    if (this.#loaded !== undefined) return this.#loaded;
    const path = `${this.#o.policyDir}/policy.json`;
    try {
      const raw = JSON.parse(await readFile(path, 'utf8')) as PolicyInputs;
      if (!Array.isArray(raw.layers) || !Array.isArray(raw.groups)) throw new Error('no layers or groups');
      this.#loaded = raw;
    } catch (e) {
      // Without the record the policy's contents are unknown: compile on the first ensure.
      this.#o.log(
        'warn',
        `SELinux: cannot read ${path} (${(e as Error).message}); the policy is compiled again`,
      );
      this.#loaded = { version: 0, base: '', layers: [], groups: [] };
    }
    return this.#loaded;
  }

  /** The inputs of the loaded policy, once known (status). */
  get current(): PolicyInputs | undefined {
    return this.#loaded;
  }

  /** The sha256 of the policy the kernel holds (as it serialises it). */
  digest(): string | undefined {
    this.#digest ??= loadedPolicyDigest(this.#o.selinuxfs);
    return this.#digest;
  }

  /**
   * Makes the loaded policy hold exactly `layers` and `groups`; returns the layers refused for
   * their module (E_POLICY_INVALID, with why), which the policy then leaves out. Throws when
   * the policy cannot be compiled or loaded at all (the running policy stays).
   */
  async ensure(
    mod: PolicyCompiler,
    layers: readonly PolicyLayer[],
    groups: readonly { name: string; layers: readonly string[] }[],
  ): Promise<Map<string, Error>> {
    const refused = new Map<string, Error>();
    let todo = [...layers];
    for (;;) {
      const want = await mod.policyInputs(todo, groups);
      if (JSON.stringify(want) === JSON.stringify(await this.loaded())) return refused;
      await mkdir(this.#o.workDir, { recursive: true });
      const started = Date.now();
      let compiled: Awaited<ReturnType<PolicyCompiler['compilePolicy']>>;
      try {
        compiled = await mod.compilePolicy(
          todo.map((l) => ({ name: l.name, module: l.module })),
          groups,
          { workDir: this.#o.workDir },
        );
      } catch (e) {
        const layer = (e as { details?: { layer?: unknown } }).details?.layer;
        if (typeof layer === 'string' && todo.some((l) => l.name === layer)) {
          this.#o.log('error', `SELinux: layer ${layer}'s policy is refused: ${(e as Error).message}`);
          refused.set(layer, e as Error);
          todo = todo.filter((l) => l.name !== layer);
          continue;
        }
        throw e;
      }
      loadPolicy(compiled.policy, this.#o.selinuxfs);
      this.#loaded = want;
      this.#digest = undefined;
      this.#o.log(
        'info',
        `SELinux: policy loaded for ${todo.length} layer(s) and ${groups.length} group(s) (${compiled.policy.length} bytes, compiled in ${Date.now() - started} ms)`,
      );
      return refused;
    }
  }
}
