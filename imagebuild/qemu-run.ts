// Boots a disk image in QEMU the way `mway-image run` and the boot tests need it: UEFI
// firmware (Debian ovmf) with a private copy of the variable store, TCG (KVM does not
// work on our machines), the disk on virtio, user networking whose forwards listen on
// 127.0.0.1 only, the serial console streamed line by line, and a QMP socket so the
// guest can be asked to power off (ACPI power button) before it is killed.
import { execa } from 'execa';
import { copyFile, type FileHandle, mkdtemp, open, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool } from '../common/index.ts';
import { ImageError } from './image-error.ts';

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
/** Secure Boot capable firmware: needs SMM and a secure pflash, so q35,smm=on (TCG emulates SMM). */
export const OVMF_CODE_SECBOOT = '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd';
/** Debian's variable store with Secure Boot on and the snakeoil test key in PK, KEK and db. */
export const OVMF_VARS_SNAKEOIL = '/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd';

export interface QemuForward {
  host: number;
  guest: number;
}

export interface RunQemuOptions {
  disk: string;
  /** Milliseconds until the guest is killed. */
  timeout: number;
  forwards?: readonly QemuForward[];
  /** Where the serial console goes besides `onLine`: our stdout, a file, or nowhere. */
  serial?: 'stdio' | 'none' | string;
  /** Called with each console line (no newline). */
  onLine?: (line: string) => void;
  /** Variable store to start from (copied, never written unless `keepVars`). */
  ovmfVars?: string;
  /** Where to copy the variable store back when QEMU ends (key enrollment keeps its result). */
  keepVars?: string;
  /**
   * Secure Boot: the SMM firmware build with a secure pflash; `ovmfVars` defaults to the
   * snakeoil store (Secure Boot on, Debian's test key enrolled).
   */
  secureBoot?: boolean;
  ovmfCode?: string;
  memoryMiB?: number;
  cpus?: number;
  /** Discard the guest's writes to the disk. */
  snapshot?: boolean;
  /**
   * A cloud-init NoCloud seed (a `cidata` ISO 9660 or FAT image) attached read-only as a second
   * virtio disk, the way a cloud attaches one; the guest's agent reads it (doc/agent-config.md).
   */
  seed?: string;
  /**
   * More network cards after the user network's (eth1, eth2, … in the guest): a QEMU `-netdev`
   * backend without its id (`socket,listen=127.0.0.1:PORT` on one guest, `socket,connect=…` on
   * the other puts both on one segment) and the card's MAC, which must differ per guest there.
   */
  nics?: ReadonlyArray<{ netdev: string; mac: string }>;
  /** Exit QEMU when the guest reboots (default true: a panic then ends the run). */
  noReboot?: boolean;
  /**
   * An Intel 6300ESB watchdog (`-device i6300esb`, reset when it fires): the agent arms and
   * feeds /dev/watchdog, so a hung guest resets — or, under noReboot, ends the run.
   */
  watchdog?: boolean;
}

export interface QemuResult {
  exitCode: number;
  /** The guest powered off (or rebooted under noReboot) by itself or after powerdown(). */
  poweredOff: boolean;
  timedOut: boolean;
  killed: boolean;
  /** The last console lines (at most 200). */
  tail: string[];
  durationMs: number;
}

export interface QemuRun {
  pid: number | undefined;
  done: Promise<QemuResult>;
  /** Presses the ACPI power button (QMP system_powerdown). */
  powerdown(): Promise<void>;
  /** Stops QEMU now (SIGTERM, SIGKILL after 5 s). */
  kill(): void;
}

async function qmp(socket: string, command: string, timeoutMs = 10_000): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const s = connect(socket);
    let buf = '';
    let stage = 0;
    const timer = setTimeout(() => {
      s.destroy();
      reject(new ImageError('E_QEMU_QMP', `QMP ${command} got no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const finish = (e?: Error): void => {
      clearTimeout(timer);
      s.end();
      if (e === undefined) resolve();
      else reject(e);
    };
    s.on('error', (e) =>
      finish(new ImageError('E_QEMU_QMP', `Cannot talk to QEMU over ${socket}: ${e.message}`, { cause: e })),
    );
    s.on('data', (d) => {
      buf += d.toString('utf8');
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        if ('error' in msg)
          return finish(new ImageError('E_QEMU_QMP', `QMP ${command} failed: ${JSON.stringify(msg.error)}`));
        if (stage === 0 && 'QMP' in msg) {
          stage = 1;
          s.write('{"execute":"qmp_capabilities"}\n');
        } else if (stage === 1 && 'return' in msg) {
          stage = 2;
          s.write(`${JSON.stringify({ execute: command })}\n`);
        } else if (stage === 2 && 'return' in msg) return finish();
      }
    });
  });
}

/** Starts QEMU on `disk`; `done` resolves when QEMU exits (power-off, timeout or kill). */
export async function runQemu(options: RunQemuOptions): Promise<QemuRun> {
  const qemu = await requireTool('qemu-system-x86_64');
  const setpriv = await requireTool('setpriv');
  const sb = options.secureBoot === true;
  const code = options.ovmfCode ?? (sb ? OVMF_CODE_SECBOOT : OVMF_CODE);
  const varsSrc = options.ovmfVars ?? (sb ? OVMF_VARS_SNAKEOIL : OVMF_VARS);
  for (const f of options.forwards ?? []) {
    for (const p of [f.host, f.guest]) {
      if (!Number.isInteger(p) || p < 1 || p > 65535)
        throw new ImageError('E_QEMU_BAD_FORWARD', `Cannot forward port ${p}: expected 1 to 65535`);
    }
  }
  const work = await mkdtemp(join(tmpdir(), 'mway-qemu-'));
  const vars = join(work, 'OVMF_VARS.fd');
  try {
    await copyFile(varsSrc, vars);
  } catch (e) {
    await rm(work, { recursive: true, force: true });
    throw new ImageError(
      'E_QEMU_FIRMWARE',
      `Cannot copy the UEFI variable store ${varsSrc}: install the Debian package ovmf`,
      {
        cause: e,
        path: varsSrc,
      },
    );
  }
  const qmpSocket = join(work, 'qmp.sock');
  const hostfwd = (options.forwards ?? [])
    .map((f) => `,hostfwd=tcp:127.0.0.1:${f.host}-:${f.guest}`)
    .join('');
  const args = [
    '-accel',
    'tcg',
    '-machine',
    sb ? 'q35,smm=on' : 'q35',
    ...(sb ? ['-global', 'driver=cfi.pflash01,property=secure,value=on'] : []),
    '-cpu',
    'max',
    '-m',
    String(options.memoryMiB ?? 1024),
    '-smp',
    String(options.cpus ?? 1),
    '-display',
    'none',
    '-monitor',
    'none',
    '-serial',
    'stdio',
    '-qmp',
    `unix:${qmpSocket},server=on,wait=off`,
    '-drive',
    `if=pflash,format=raw,unit=0,readonly=on,file=${code}`,
    '-drive',
    `if=pflash,format=raw,unit=1,file=${vars}`,
    '-drive',
    `if=none,id=disk0,format=raw,file=${options.disk}${options.snapshot === true ? ',snapshot=on' : ''}`,
    ...(options.seed === undefined
      ? []
      : ['-drive', `if=virtio,format=raw,readonly=on,file=${options.seed}`]),
    '-netdev',
    `user,id=n0${hostfwd}`,
    '-device',
    'virtio-net-pci,netdev=n0',
    ...(options.nics ?? []).flatMap((n, i) => [
      '-netdev',
      `${n.netdev},id=n${i + 1}`,
      '-device',
      `virtio-net-pci,netdev=n${i + 1},mac=${n.mac}`,
    ]),
    // The disk first in the firmware's boot order (bootindex, QEMU's fw_cfg bootorder): a
    // variable store whose BootOrder lists the network first (the one `mway-image enroll`
    // keeps does) otherwise spends minutes under TCG on iPXE and PXEv4/v6 timeouts before the
    // disk. Declared after the network cards, as an if=virtio drive is, so each device keeps
    // its PCI address (net 0x2…, then the disk, then the seed).
    '-device',
    'virtio-blk-pci,drive=disk0,bootindex=0',
    ...(options.noReboot === false ? [] : ['-no-reboot']),
    ...(options.watchdog === true ? ['-device', 'i6300esb', '-action', 'watchdog=reset'] : []),
  ];
  // Open the console file before QEMU starts, so a bad path cannot leave a guest running.
  let serialFile: FileHandle | undefined;
  try {
    serialFile =
      options.serial !== undefined && options.serial !== 'stdio' && options.serial !== 'none'
        ? await open(options.serial, 'w')
        : undefined;
  } catch (e) {
    await rm(work, { recursive: true, force: true });
    throw new ImageError(
      'E_QEMU_SERIAL',
      `Cannot write the serial console to ${options.serial}: ${String(e)}`,
      {
        cause: e,
        path: String(options.serial),
      },
    );
  }
  const started = Date.now();
  // QEMU exits on SIGINT. In its own session a terminal's Ctrl-C reaches only us (and
  // becomes an ACPI power-button press); --pdeathsig still takes QEMU down with us if we die.
  const child = execa(setpriv, ['--pdeathsig', 'KILL', '--', qemu, ...args], {
    detached: true,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    reject: false,
    timeout: options.timeout,
    forceKillAfterDelay: 5_000,
    buffer: false,
  });
  const tail: string[] = [];
  let partial = '';
  let stderr = '';
  let killed = false;
  child.stdout?.on('data', (d: Buffer) => {
    if (options.serial === 'stdio') process.stdout.write(d);
    void serialFile?.write(d);
    partial += d.toString('utf8');
    for (let nl = partial.indexOf('\n'); nl >= 0; nl = partial.indexOf('\n')) {
      const line = partial.slice(0, nl).replace(/\r$/, '');
      partial = partial.slice(nl + 1);
      tail.push(line);
      if (tail.length > 200) tail.shift();
      options.onLine?.(line);
    }
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-4000);
  });
  const done = (async (): Promise<QemuResult> => {
    const r = (await child) as unknown as { exitCode?: number; timedOut: boolean; signal?: string };
    await serialFile?.close();
    if (options.keepVars !== undefined) await copyFile(vars, options.keepVars);
    await rm(work, { recursive: true, force: true });
    if (partial !== '') {
      tail.push(partial);
      options.onLine?.(partial);
    }
    const exitCode = r.exitCode ?? 128;
    if (exitCode !== 0 && !r.timedOut && !killed && r.signal === undefined) {
      throw new ImageError(
        'E_QEMU_FAILED',
        `QEMU exited with ${exitCode}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`,
        {
          details: { stderr },
        },
      );
    }
    return {
      exitCode,
      poweredOff: exitCode === 0 && !r.timedOut && !killed,
      timedOut: r.timedOut,
      killed,
      tail,
      durationMs: Date.now() - started,
    };
  })();
  return {
    pid: child.pid,
    done,
    powerdown: () => qmp(qmpSocket, 'system_powerdown'),
    kill: () => {
      killed = true;
      child.kill('SIGTERM');
    },
  };
}

/** Parses `HOST:GUEST` (both TCP ports). */
export function parseForward(spec: string): QemuForward {
  const m = /^(\d{1,5}):(\d{1,5})$/.exec(spec);
  const host = Number(m?.[1]);
  const guest = Number(m?.[2]);
  if (m === null || host < 1 || host > 65535 || guest < 1 || guest > 65535) {
    throw new ImageError(
      'E_QEMU_BAD_FORWARD',
      `Cannot use --forward ${JSON.stringify(spec)}: expected HOSTPORT:GUESTPORT`,
    );
  }
  return { host, guest };
}
