// imagebuild/: disk formats (dm-verity, GPT, cpio, filesystem images) and the image builder.
export * from './image-error.ts';
export * from './partition-types.ts';
export * from './guid.ts';
export * from './verity-format.ts';
export * from './verity-geometry.ts';
export * from './verity-hasher.ts';
export * from './verity-seed.ts';
export * from './verity-superblock.ts';
export * from './verity-verify.ts';
export * from './fs-erofs.ts';
export * from './fs-image.ts';
export * from './fs-ext4.ts';
export * from './fs-vfat.ts';
export * from './fs-squashfs.ts';
export * from './gpt-disk.ts';
export * from './cpio-newc.ts';
export * from './cpio-read.ts';
