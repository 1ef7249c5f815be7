// AVA's configuration (was package.json "ava"; a file, because sortTestFiles is a function).
//
// Two workers run test files in the order below: the slowest files first, so the long QEMU
// runs start at once and the many short files fill the other worker around them, instead of
// an 8-minute file starting late and running alone at the end of the suite (CI's 30-minute
// budget, doc/performance.md). The seconds are each file's wall time in a clean-checkout run
// (2 cores, TCG); a file not listed is short and runs after these, in path order.
export const SLOW = {
  'test/update/ab-update-qemu.test.ts': 512,
  'test/imagebuild/oci-postgres-qemu.test.ts': 265,
  'test/bootchain/chain-qemu.test.ts': 230,
  'test/fleet/fleet-compose.test.ts': 159,
  'test/bootchain/how-to-enroll.test.ts': 140,
  'test/fleet/fleet-qemu.test.ts': 124,
  'test/imagebuild/how-to-build-qemu.test.ts': 95,
  'test/imagebuild/build-e2e.test.ts': 72,
  'test/imagebuild/selinux-qemu.test.ts': 71,
  'test/agent/layers/oci-compose.test.ts': 65,
  'test/fleet/how-to-cloud-init.test.ts': 63,
  'test/imagebuild/build-disk.test.ts': 61,
  'test/imagebuild/boot-initramfs.test.ts': 42,
  'test/control/broker/nats-proxy.test.ts': 39,
  'test/layers/selinux-policy.test.ts': 37,
  'test/fleet/fleet-update-kill.test.ts': 30,
  'test/imagebuild/boot-uki.test.ts': 29,
  'test/fleet/how-to-fleet.test.ts': 27,
  'test/control/broker/nats-cluster.test.ts': 24,
  'test/cli-hostile-files.test.ts': 23,
};
const root = `${import.meta.dirname}/`;
const seconds = (file) => SLOW[file.startsWith(root) ? file.slice(root.length) : file] ?? 0;

export default {
  extensions: ['ts'],
  files: ['test/**/*.test.ts'],
  timeout: '5m',
  concurrency: 2,
  workerThreads: false,
  sortTestFiles: (a, b) => seconds(b) - seconds(a) || a.localeCompare(b, [], { numeric: true }),
};
