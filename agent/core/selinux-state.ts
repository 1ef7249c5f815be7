// SELinux as the running kernel has it (doc/selinux.md): the mode, read from selinuxfs (the
// initramfs loaded the policy; the mode is the signed command line's `enforcing=`), the loaded
// policy's digest, a policy load (one write() of a binary policy, as the kernel requires), the
// agent's own access checks through selinuxfs' `access` file (a userspace object manager, like
// dbus-daemon), and the contexts the kernel reports for a process. The denial count is
// avc-denials.ts.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentError } from './agent-error.ts';

/** Where the kernel's selinuxfs is mounted when SELinux is enabled (enforcing or permissive). */
export const SELINUXFS = '/sys/fs/selinux';

export type SelinuxMode = 'enforcing' | 'permissive' | 'off';

/** `off` when SELinux is not the running LSM (no selinuxfs, or no policy loaded). */
export function selinuxMode(selinuxfs = SELINUXFS): SelinuxMode {
  const enforce = join(selinuxfs, 'enforce');
  if (!existsSync(enforce)) return 'off';
  try {
    return readFileSync(enforce, 'utf8').trim() === '1' ? 'enforcing' : 'permissive';
  } catch {
    return 'off';
  }
}

export function selinuxEnabled(selinuxfs = SELINUXFS): boolean {
  return selinuxMode(selinuxfs) !== 'off';
}

/** The sha256 of the policy the kernel holds now (its own serialisation, /sys/fs/selinux/policy). */
export function loadedPolicyDigest(selinuxfs = SELINUXFS): string | undefined {
  try {
    return createHash('sha256')
      .update(readFileSync(join(selinuxfs, 'policy')))
      .digest('hex');
  } catch {
    return undefined;
  }
}

/** Loads a binary policy: selinuxfs takes it in one write() at offset 0, or not at all. */
export function loadPolicy(policy: Uint8Array, selinuxfs = SELINUXFS): void {
  const fd = openSync(join(selinuxfs, 'load'), 'w');
  try {
    const n = writeSync(fd, policy, 0, policy.length, 0);
    if (n !== policy.length)
      throw new AgentError(
        'E_SELINUX_LOAD',
        `Cannot load the SELinux policy: the kernel took ${n} of ${policy.length} bytes`,
      );
  } catch (e) {
    if (e instanceof AgentError) throw e;
    throw new AgentError('E_SELINUX_LOAD', `Cannot load the SELinux policy: ${(e as Error).message}`, {
      cause: e,
    });
  } finally {
    closeSync(fd);
  }
}

/** The agent's own process context (/proc/self/attr/current), or undefined without SELinux. */
export function ownContext(): string | undefined {
  try {
    const c = readFileSync('/proc/self/attr/current', 'utf8').replace(/\0+$/, '').trim();
    return c === '' || c === 'unconfined' ? undefined : c;
  } catch {
    return undefined;
  }
}

/** A process's context as the kernel reports it (/proc/PID/attr/current), or undefined when gone. */
export async function processContext(pid: number): Promise<string | undefined> {
  try {
    const c = (await readFile(`/proc/${pid}/attr/current`, 'utf8')).replace(/\0+$/, '').trim();
    return c === '' ? undefined : c;
  } catch {
    return undefined;
  }
}

/** `user:role:type:level` split at its first three colons (an MLS level has colons of its own). */
export function splitContext(context: string): { user: string; role: string; type: string; level: string } {
  const m = /^([^:]+):([^:]+):([^:]+):(.+)$/.exec(context);
  if (m === null) throw new TypeError(`Not an SELinux context: ${JSON.stringify(context)}`);
  return { user: m[1] ?? '', role: m[2] ?? '', type: m[3] ?? '', level: m[4] ?? '' };
}

export interface AccessDecision {
  allowed: boolean;
  /** The kernel says to log a denial of this permission (no dontaudit rule). */
  audit: boolean;
  /** The source is a permissive domain: a denial is logged, not enforced (AVD_FLAGS_PERMISSIVE). */
  permissive: boolean;
}

/**
 * Asks the loaded policy whether `scontext` may `perm` on `tcontext` in (userspace) class
 * `tclass` — security_compute_av through selinuxfs' access file, as libselinux does.
 */
export function computeAccess(
  scontext: string,
  tcontext: string,
  tclass: string,
  perm: string,
  selinuxfs = SELINUXFS,
): AccessDecision {
  const classDir = join(selinuxfs, 'class', tclass);
  // A class or permission the loaded policy lacks has no file: the same coded refusal as a
  // damaged one, never a bare ENOENT.
  const number = (path: string): number => {
    try {
      return Number(readFileSync(path, 'utf8').trim());
    } catch {
      return Number.NaN;
    }
  };
  const index = number(join(classDir, 'index'));
  const bit = number(join(classDir, 'perms', perm));
  if (!Number.isInteger(index) || !Number.isInteger(bit) || bit < 1 || bit > 32)
    throw new AgentError('E_SELINUX_ACCESS', `Cannot compute access: ${tclass} ${perm} is not in the policy`);
  const fd = openSync(join(selinuxfs, 'access'), 'r+');
  try {
    writeSync(fd, `${scontext} ${tcontext} ${index}`);
    const buf = Buffer.alloc(256);
    const n = readSync(fd, buf, 0, buf.length, null);
    // "allowed decided auditallow auditdeny seqno flags", hex but seqno.
    const [allowed, , , auditdeny, , flags] = buf
      .toString('latin1', 0, n)
      .trim()
      .split(/\s+/)
      .map((x) => Number.parseInt(x, 16));
    const mask = 2 ** (bit - 1);
    return {
      allowed: (Math.floor((allowed ?? 0) / mask) & 1) === 1,
      audit: (Math.floor((auditdeny ?? 0xffffffff) / mask) & 1) === 1,
      permissive: ((flags ?? 0) & 1) === 1,
    };
  } catch (e) {
    throw new AgentError(
      'E_SELINUX_ACCESS',
      `Cannot compute access for ${scontext}: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  } finally {
    closeSync(fd);
  }
}
