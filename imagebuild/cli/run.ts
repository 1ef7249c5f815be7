// `mway-image run DISK`: boot a disk image in QEMU (TCG) under OVMF with the serial console
// on stdout; returns when the guest powers off (doc/boot.md). A guest reboot restarts the
// guest unless --no-reboot.
import { defineCommand } from 'citty';
import { access } from 'node:fs/promises';
import { commonArgs, EXIT_FAIL, output, values } from '../../common/index.ts';
import { ImageError } from '../image-error.ts';
import { parseForward, runQemu } from '../qemu-run.ts';

export default defineCommand({
  args: {
    ...commonArgs,
    disk: { type: 'positional', required: true, description: 'Disk image (raw GPT)' },
    timeout: { type: 'string', description: 'Seconds before the guest is killed (default 3600)' },
    forward: {
      type: 'string',
      repeatable: true,
      description: 'HOSTPORT:GUESTPORT, TCP, host side on 127.0.0.1 (repeatable)',
    },
    serial: { type: 'string', description: 'Write the serial console to this file instead of stdout' },
    memory: { type: 'string', description: 'Guest memory in MiB (default 1024)' },
    snapshot: { type: 'boolean', description: 'Discard the guest’s writes to the disk' },
    reboot: {
      type: 'boolean',
      default: true,
      description:
        'A guest reboot (mway reboot) restarts it, like hardware; --no-reboot ends the run instead',
    },
    watchdog: {
      type: 'boolean',
      default: true,
      description:
        'An i6300esb hardware watchdog the agent feeds: a hung guest resets, like a server; --no-watchdog leaves it out',
    },
    'secure-boot': {
      type: 'boolean',
      description:
        'Secure Boot firmware (OVMF secboot, SMM); variables from --vars or Debian’s snakeoil store',
    },
    seed: {
      type: 'string',
      description:
        'A cloud-init NoCloud seed (genisoimage -volid cidata …) attached read-only as a second disk',
    },
    vars: {
      type: 'string',
      description: 'UEFI variable store to start from (e.g. one made by mway-image enroll)',
    },
  },
  async run({ args }) {
    try {
      await access(args.disk);
    } catch (e) {
      throw new ImageError('E_QEMU_NO_DISK', `Cannot boot ${args.disk}: no such file`, {
        cause: e,
        path: args.disk,
      });
    }
    if (args.seed !== undefined) {
      try {
        await access(args.seed);
      } catch (e) {
        throw new ImageError('E_QEMU_NO_DISK', `Cannot attach the seed ${args.seed}: no such file`, {
          cause: e,
          path: args.seed,
        });
      }
    }
    const seconds = args.timeout === undefined ? 3600 : Number(args.timeout);
    if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 86_400) {
      throw new ImageError(
        'E_QEMU_BAD_TIMEOUT',
        `Cannot use --timeout ${JSON.stringify(args.timeout)}: expected 1 to 86400 seconds`,
      );
    }
    const memory = args.memory === undefined ? 1024 : Number(args.memory);
    if (!Number.isInteger(memory) || memory < 128 || memory > 65536) {
      throw new ImageError(
        'E_QEMU_BAD_MEMORY',
        `Cannot use --memory ${JSON.stringify(args.memory)}: expected 128 to 65536 MiB`,
      );
    }
    const forwards = values(args.forward).map(parseForward);
    const q = await runQemu({
      disk: args.disk,
      timeout: seconds * 1000,
      forwards,
      // With --json stdout carries only the result, so the console goes to --serial or nowhere.
      serial: args.serial ?? (args.json === true ? 'none' : 'stdio'),
      memoryMiB: memory,
      snapshot: args.snapshot === true,
      // A server that is told to reboot comes back; `--no-reboot` is for runs that must end
      // at the first reboot or panic (tests, one-shot checks).
      noReboot: args.reboot === false,
      watchdog: args.watchdog !== false,
      secureBoot: args['secure-boot'] === true,
      ...(args.vars === undefined ? {} : { ovmfVars: args.vars }),
      ...(args.seed === undefined ? {} : { seed: args.seed }),
    });
    // Ctrl-C: ask the guest to power off first (the agent handles the ACPI button), then kill.
    let interrupts = 0;
    const onSigint = (): void => {
      interrupts++;
      if (interrupts === 1) q.powerdown().catch(() => q.kill());
      else q.kill();
    };
    process.on('SIGINT', onSigint);
    let r: Awaited<typeof q.done>;
    try {
      r = await q.done;
    } finally {
      process.off('SIGINT', onSigint);
    }
    output(
      args.json,
      {
        poweredOff: r.poweredOff,
        timedOut: r.timedOut,
        killed: r.killed,
        exitCode: r.exitCode,
        durationMs: r.durationMs,
      },
      () =>
        r.poweredOff
          ? `mway-image: guest powered off after ${(r.durationMs / 1000).toFixed(1)} s`
          : `mway-image: guest ${r.timedOut ? `killed after the ${seconds} s timeout` : 'killed'}`,
    );
    return r.poweredOff ? 0 : EXIT_FAIL;
  },
});
