// Step `SELinux policy`: the policy CoreOS carries (doc/selinux.md), compiled here with the
// same function the agent uses on the device (layers/selinux-policy.ts) for the preinstalled
// layers the secure config allows and its groups. CoreOS keeps the binary policy (the
// initramfs loads it), the file_contexts its erofs was labelled from, and policy.json, what
// it was compiled from: while the agent's layers and groups are the same, it loads nothing.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { compilePolicy, type PolicyInputs, type PolicyLayerInput, policyInputs } from '../layers/index.ts';
import type { BuildContext } from './build-context.ts';

/** Where CoreOS keeps its policy (the agent config's `selinuxPolicyDir`, the initramfs' load). */
export const COREOS_POLICY_DIR = '/etc/selinux/milkyway';
/** The binary policy's name there (format 33, what Linux 6.1 reads). */
export const COREOS_POLICY_FILE = 'policy.33';

export interface CoreosPolicy {
  policy: Buffer;
  /** secilc's file_contexts: mkfs.erofs labels CoreOS with it. */
  fileContexts: string;
  inputs: PolicyInputs;
}

/** Compiles the policy for `layers` (name and policy.cil) and the spec's groups. */
export async function buildPolicy(
  ctx: BuildContext,
  layers: readonly PolicyLayerInput[],
): Promise<CoreosPolicy> {
  ctx.progress.step('SELinux policy');
  const allow = ctx.spec.secureConfig.allowLayers;
  const wanted = allow === undefined ? layers : layers.filter((l) => allow.includes(l.name));
  const groups = Object.entries(ctx.spec.secureConfig.groups ?? {}).map(([name, g]) => ({
    name,
    layers: g.layers,
  }));
  // A module that does not compile is E_POLICY_INVALID naming its layer and line (as at pack).
  const compiled = await compilePolicy(wanted, groups, { workDir: ctx.work });
  ctx.progress.bytes(compiled.policy.length, compiled.policy.length);
  return {
    policy: compiled.policy,
    fileContexts: compiled.fileContexts,
    inputs: await policyInputs(wanted, groups),
  };
}

/** Writes the policy into the CoreOS tree at `root`; returns the file_contexts path (outside it). */
export async function writeCoreosPolicy(
  root: string,
  p: CoreosPolicy,
  work: string,
  mode: 'enforcing' | 'permissive' | 'off',
): Promise<string> {
  const dir = join(root, COREOS_POLICY_DIR);
  await mkdir(dir, { recursive: true });
  // libselinux counts SELinux as enabled only when this file exists (is_selinux_enabled): bwrap
  // refuses --exec-label without it ("labeling not supported on this system"). The mode the
  // kernel runs is the command line's; this only tells libselinux's users which it is.
  await writeFile(
    join(root, '/etc/selinux/config'),
    `# Written by mway-image (doc/selinux.md): the kernel's mode is the signed command line's.\nSELINUX=${mode === 'off' ? 'disabled' : mode}\nSELINUXTYPE=milkyway\n`,
  );
  // dbus-daemon (the agent's system bus) includes contexts/dbus_contexts whenever SELinux is
  // on: no per-name contexts, so every bus name has the connection's own label.
  await mkdir(join(dir, 'contexts'), { recursive: true });
  await writeFile(
    join(dir, 'contexts', 'dbus_contexts'),
    '<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"\n "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">\n<busconfig>\n  <selinux>\n  </selinux>\n</busconfig>\n',
  );
  await writeFile(join(dir, COREOS_POLICY_FILE), p.policy);
  await writeFile(join(dir, 'file_contexts'), p.fileContexts);
  await writeFile(join(dir, 'policy.json'), `${JSON.stringify(p.inputs, null, 2)}\n`);
  const fc = join(work, 'coreos.file_contexts');
  await writeFile(fc, p.fileContexts);
  return fc;
}
