// imagebuild/: the MilkyWayLinux image builder (image spec, CoreOS, initramfs, UKI, disk). The
// formats it writes (dm-verity, GPT, cpio, file systems) are in formats/. Re-exports only.
export * from './image-codes.ts';
export * from './image-error.ts';
export * from './kernel-package.ts';
export * from './kernel-selinux.ts';
export * from './module-closure.ts';
export * from './binary-closure.ts';
export * from './initramfs-init.ts';
export * from './initramfs.ts';
export * from './uki.ts';
export * from './qemu-run.ts';
export * from './image-spec.ts';
export * from './coreos-paths.ts';
export * from './coreos-tree.ts';
export * from './dev-keys.ts';
export * from './deterministic-sign.ts';
export * from './verity-sig.ts';
export * from './secure-config.ts';
export * from './build-image.ts';
export * from './disk-read.ts';
export * from './disk-layout-check.ts';
export * from './disk-inspect.ts';
export * from './disk-verify.ts';
