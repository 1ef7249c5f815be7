// A minimal CoreOS for the initramfs tests: an erofs root with busybox and a /sbin/init
// script, a dm-verity tree beside it, both placed on the disk under the DPS convention
// (partition GUIDs from the root hash) exactly as the disk assembly does.
import { randomBytes } from 'node:crypto';
import { chmod, copyFile, mkdir, realpath, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { requireTool } from '../../common/exec.ts';
import { binaryClosure } from '../../imagebuild/binary-closure.ts';
import { DPS, formatVerity, makeErofs } from '../../formats/index.ts';
import { verityPartitionUuids } from '../../imagebuild/initramfs-init.ts';
import { MILKYWAY } from '../../platform/index.ts';
import { ROOT } from '../helpers.ts';
import { EPOCH } from './boot-fixtures.ts';

export const COREOS_MARKER = 'BOOT-COREOS-MARKER';

export interface TestCoreos {
  rootHash: string;
  dataImage: string;
  hashImage: string;
  dataSize: number;
  partitions: { name: string; type: string; uuid: string; sizeBytes: number; image: string }[];
  /** mway.certs root hash when built with `certs` */
  certsRootHash?: string;
}

const MiB = 1 << 20;
const roundMiB = (n: number): number => Math.ceil(n / MiB) * MiB;

/** Builds the erofs root (busybox + /sbin/init printing COREOS_MARKER and powering off) and its verity tree. */
export async function testCoreos(
  dir: string,
  label = 'milkyway_1.0.0',
  options: {
    fillerBytes?: number;
    node?: boolean;
    certs?: boolean;
    /** More files in the tree, by path (`etc/selinux/milkyway/policy.33`). */
    files?: Record<string, string | Uint8Array>;
  } = {},
): Promise<TestCoreos> {
  const root = join(dir, 'coreos');
  for (const d of ['bin', 'sbin', 'dev', 'proc', 'sys', 'run', 'tmp', 'certs'])
    await mkdir(join(root, d), { recursive: true });
  await copyFile(await requireTool('busybox'), join(root, 'bin/busybox'));
  await chmod(join(root, 'bin/busybox'), 0o755);
  await writeFile(
    join(root, 'sbin/init'),
    `#!/bin/busybox sh\n/bin/busybox echo "${COREOS_MARKER} pid=$$ root=$(/bin/busybox grep ' / ' /proc/mounts | /bin/busybox head -n 1)"\n/bin/busybox echo "CERTS-MOUNT $(/bin/busybox grep ' /certs ' /proc/mounts) ANCHOR $(/bin/busybox cat /certs/anchor.pem 2>&1)"\n/bin/busybox sync\n/bin/busybox poweroff -f\n`,
    { mode: 0o755 },
  );
  // Incompressible filler stands in for the real CoreOS payload (Node is ~120 MB) in the bench.
  if (options.fillerBytes !== undefined)
    await writeFile(join(root, 'filler'), randomBytes(options.fillerBytes));
  // Node 24 (the npm `node` package, as CoreOS ships it) with its libraries; /sbin/init then
  // runs a script that prints the marker from JavaScript as PID 1.
  if (options.node === true) {
    const nodeBin = await realpath(join(ROOT, 'node_modules/.bin/node'));
    for (const f of await binaryClosure([nodeBin])) {
      const dest = join(root, f.src === nodeBin ? 'usr/bin/node' : f.dest);
      await mkdir(dirname(dest), { recursive: true });
      await copyFile(f.src, dest);
      await chmod(dest, 0o755);
    }
    await writeFile(
      join(root, 'init.js'),
      `console.log('${COREOS_MARKER} pid=' + process.pid + ' node=' + process.version);\nrequire('node:child_process').execFileSync('/bin/busybox', ['poweroff', '-f']);\n`,
    );
    await writeFile(join(root, 'sbin/init'), '#!/bin/busybox sh\nexec /usr/bin/node /init.js\n', {
      mode: 0o755,
    });
  }
  for (const [p, bytes] of Object.entries(options.files ?? {})) {
    await mkdir(dirname(join(root, p)), { recursive: true });
    await writeFile(join(root, p), bytes);
  }
  const dataImage = join(dir, 'coreos.erofs');
  const hashImage = join(dir, 'coreos.verity');
  await makeErofs(root, dataImage, { sourceDateEpoch: EPOCH });
  const v = await formatVerity(dataImage, { hashPath: hashImage, seed: 'boot-test', label });
  const uuids = verityPartitionUuids(v.rootHash);
  // The certificate partition as the disk assembly makes it: erofs with its tree appended.
  let certs: { rootHash: string; partition: TestCoreos['partitions'][number] } | undefined;
  if (options.certs === true) {
    const certDir = join(dir, 'certs');
    await mkdir(certDir, { recursive: true });
    await writeFile(join(certDir, 'anchor.pem'), 'test-anchor\n');
    const certImage = join(dir, 'certs.erofs');
    await makeErofs(certDir, certImage, { sourceDateEpoch: EPOCH });
    const cv = await formatVerity(certImage, { seed: 'boot-test', label: 'certificates' });
    certs = {
      rootHash: cv.rootHash,
      partition: {
        name: 'certificates',
        type: MILKYWAY.certificates,
        uuid: '0b7b6c2e-54f1-4a38-9d7f-3a4c2b1d0e9f',
        sizeBytes: roundMiB(cv.hashOffset + cv.hashSize),
        image: certImage,
      },
    };
  }
  const dataSize = (await stat(dataImage)).size;
  return {
    rootHash: v.rootHash,
    dataImage,
    hashImage,
    dataSize,
    partitions: [
      { name: label, type: DPS.root, uuid: uuids.data, sizeBytes: roundMiB(dataSize), image: dataImage },
      {
        name: `${label}_verity`,
        type: DPS.rootVerity,
        uuid: uuids.hash,
        sizeBytes: roundMiB((await stat(hashImage)).size),
        image: hashImage,
      },
      ...(certs === undefined ? [] : [certs.partition]),
    ],
    ...(certs === undefined ? {} : { certsRootHash: certs.rootHash }),
  };
}
