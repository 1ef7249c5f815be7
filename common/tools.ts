// Every external program MilkyWay drives, with the Debian package that ships it, so a
// missing tool is reported as "install <package>" instead of a bare ENOENT.

export const DEBIAN_PACKAGE_OF: Readonly<Record<string, string>> = {
  veritysetup: 'cryptsetup-bin',
  dmsetup: 'dmsetup',
  'mkfs.erofs': 'erofs-utils',
  'fsck.erofs': 'erofs-utils',
  'dump.erofs': 'erofs-utils',
  mksquashfs: 'squashfs-tools',
  unsquashfs: 'squashfs-tools',
  'mkfs.vfat': 'dosfstools',
  'mkfs.fat': 'dosfstools',
  mcopy: 'mtools',
  mmd: 'mtools',
  mdir: 'mtools',
  'mkfs.ext4': 'e2fsprogs',
  e2fsck: 'e2fsprogs',
  debugfs: 'e2fsprogs',
  sfdisk: 'fdisk',
  sgdisk: 'gdisk',
  cpio: 'cpio',
  busybox: 'busybox-static',
  bwrap: 'bubblewrap',
  secilc: 'secilc',
  checkpolicy: 'checkpolicy',
  'qemu-system-x86_64': 'qemu-system-x86',
  'qemu-img': 'qemu-utils',
  sbsign: 'sbsigntool',
  sbverify: 'sbsigntool',
  kexec: 'kexec-tools',
  'dbus-daemon': 'dbus',
  'dbus-send': 'dbus',
  umoci: 'umoci',
  skopeo: 'skopeo',
  unshare: 'util-linux',
  nsenter: 'util-linux',
  setpriv: 'util-linux',
  losetup: 'mount',
  perl: 'perl-base',
  mount: 'mount',
  ip: 'iproute2',
  modinfo: 'kmod',
  'apt-get': 'apt',
  'dpkg-deb': 'dpkg',
  zstd: 'zstd',
  objcopy: 'binutils',
  ukify: 'systemd-ukify',
  ldd: 'libc-bin',
};

/** The Debian package for `tool` (by basename), or undefined when we do not know it. */
export function debianPackageOf(tool: string): string | undefined {
  const base = tool.slice(tool.lastIndexOf('/') + 1);
  return DEBIAN_PACKAGE_OF[base];
}
