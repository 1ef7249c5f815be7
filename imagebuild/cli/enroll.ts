// `mway-image enroll --keys DIR -o DISK [--vars OUT.fd]`: the one-time Secure Boot enrollment
// medium (systemd-boot enrolls PK/KEK/db in setup mode); with --vars, boot it once in QEMU on an
// empty variable store and keep the enrolled store for `mway-image run --secure-boot --vars`.
import { defineCommand } from 'citty';
import { commonArgs, output } from '../../common/index.ts';
import { epochFromEnv } from './build.ts';
import { enrollInQemu, makeEnrollmentDisk } from '../enroll.ts';

const enrollArgs = {
  ...commonArgs,
  keys: {
    type: 'string',
    required: true,
    description: 'Keys folder with secure-boot-{pk,kek,db,kexec}.{key,crt} and secure-boot-guid',
  },
  out: { type: 'string', alias: 'o', required: true, description: 'Enrollment disk image to write' },
  vars: { type: 'string', description: 'Also enroll in QEMU and write the UEFI variable store here' },
} as const;

export default defineCommand({
  args: enrollArgs,
  async run({ args }) {
    const disk = await makeEnrollmentDisk({ keysDir: args.keys, out: args.out, epoch: epochFromEnv() });
    const vars = args.vars;
    if (vars !== undefined) await enrollInQemu({ disk, varsOut: vars });
    output(args.json, { disk, vars: vars ?? null }, () =>
      [
        `wrote enrollment disk ${disk}`,
        ...(vars === undefined ? [] : [`enrolled PK, KEK and db; variable store ${vars}`]),
      ].join('\n'),
    );
    return 0;
  },
});
