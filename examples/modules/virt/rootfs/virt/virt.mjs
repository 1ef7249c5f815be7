// The virt module's actions (issue 20, `mway virt`): QEMU from Debian (qemu-system-x86, its
// libraries, loader and loadable modules, OVMF), packed at /virt/qemu and /virt/firmware by
// scripts/pack-virt-module.sh. Run by the base's Node, so plain JavaScript, no imports beyond
// node:. The arguments arrive as one JSON object on stdin, the action's name in $MWAY_ACTION;
// the answer is one JSON value on stdout, a refusal `{"error":{"code","message"}}` with exit 2.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const QEMU_LIB = '/virt/qemu/lib';
const QEMU = '/virt/qemu/bin/qemu-system-x86_64';
const LOADER = `${QEMU_LIB}/ld-linux-x86-64.so.2`;

class Refusal extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** The packed QEMU through the packed loader and libraries: nothing of the base's libc is used. */
function qemu(args, timeout) {
  return execFileSync(LOADER, ['--library-path', QEMU_LIB, QEMU, ...args], {
    encoding: 'utf8',
    timeout,
    env: { PATH: '/usr/bin:/bin', QEMU_MODULE_DIR: '/virt/qemu/modules' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

// A 64 KiB firmware whose reset vector (F000:FFF0) writes 1 to isa-debug-exit at port 0xf4,
// so QEMU exits with (1 << 1) | 1 = 3 once the first guest instructions have run.
function probeFirmware(dir) {
  const b = Buffer.alloc(65536);
  Buffer.from([0xb0, 0x01, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd]).copy(b, 0xfff0);
  const f = join(dir, 'probe.bin');
  writeFileSync(f, b);
  return f;
}

/**
 * Whether `accel` runs guest code here with the machine and CPU the VMs get (q35; -cpu host
 * under KVM, max under TCG). /dev/kvm existing is not enough: on our build machines KVM opens
 * but q35 with the host CPU aborts setting MSRs (facts.md: nested KVM does not work).
 */
function probe(accel) {
  const dir = mkdtempSync('/tmp/virt-probe-');
  try {
    const fw = probeFirmware(dir);
    qemu(
      [
        '-accel', accel, '-machine', 'q35', '-cpu', accel === 'kvm' ? 'host' : 'max', '-m', '16',
        '-nodefaults', '-no-user-config', '-vga', 'none', '-display', 'none', '-bios', fw,
        '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04',
      ],
      10_000,
    );
    return { works: false, reason: 'QEMU exited 0: the probe code did not run' };
  } catch (e) {
    if (e.status === 3) return { works: true };
    const why = String(e.stderr ?? '').trim().split('\n').slice(-1)[0] || e.message;
    return { works: false, reason: e.signal === 'SIGTERM' ? 'the probe hung for 10 s' : why };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `host`: the packed QEMU's version and which accelerators work on this peer. */
function host() {
  const version = qemu(['--version'], 10_000).split('\n')[0].trim();
  let present = true;
  try {
    readFileSync('/dev/kvm', { flag: 'r' });
  } catch (e) {
    // EINVAL: a character device, which read(2) refuses; ENOENT: not bound in.
    present = e.code !== 'ENOENT';
  }
  const kvm = present ? probe('kvm') : { works: false, reason: '/dev/kvm is not on this peer' };
  const tcg = probe('tcg');
  return {
    qemu: version,
    kvm: { present, ...kvm },
    tcg,
    accel: kvm.works ? 'kvm' : tcg.works ? 'tcg' : null,
  };
}

/** `digest`: SHA-256 of a file in the module's data, compared with the one the operator signed. */
function digest(a) {
  const path = join('/data/secure', a.path);
  const h = createHash('sha256');
  // In 1 MiB reads: a disk image is far larger than the memory an action should take.
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  const got = h.digest('hex');
  if (got !== a.sha256)
    throw new Refusal('E_VIRT_DIGEST', `${a.path} has SHA-256 ${got}, the command names ${a.sha256}`);
  return { path: a.path, sha256: got };
}

const actions = { host, digest };

function main() {
  const name = process.env.MWAY_ACTION ?? '';
  const fn = actions[name];
  try {
    if (fn === undefined) throw new Refusal('E_VIRT_ACTION', `no action ${JSON.stringify(name)}`);
    const text = readFileSync(0, 'utf8');
    const args = text.trim() === '' ? {} : JSON.parse(text);
    process.stdout.write(`${JSON.stringify(fn(args))}\n`);
  } catch (e) {
    const code = e instanceof Refusal ? e.code : 'E_VIRT_FAILED';
    process.stdout.write(`${JSON.stringify({ error: { code, message: e.message } })}\n`);
    process.exitCode = 2;
  }
}
main();
