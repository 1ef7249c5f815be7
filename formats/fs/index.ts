// formats/fs/: erofs, ext4, vfat and squashfs images made from a directory without mounting,
// and FAT / ISO 9660 volumes read without mounting (a cloud-init seed).
export * from './fs-erofs.ts';
export * from './fs-image.ts';
export * from './fs-ext4.ts';
export * from './fs-vfat.ts';
export * from './fs-squashfs.ts';
export * from './volume-read.ts';
export * from './volume-probe.ts';
export { FAT_BPB, FAT16_TAIL, FAT32_TAIL, probeFat, readFatRootFiles } from './fat-read.ts';
export { probeIso9660, readIso9660RootFiles } from './iso9660-read.ts';
