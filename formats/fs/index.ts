// formats/fs/: erofs, ext4, vfat and squashfs images made from a directory without mounting.
export * from './fs-erofs.ts';
export * from './fs-image.ts';
export * from './fs-ext4.ts';
export * from './fs-vfat.ts';
export * from './fs-squashfs.ts';
