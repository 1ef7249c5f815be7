// formats/cpio/: the newc cpio archive, writer and reader (doc/cpio.md).
export * from './cpio-newc.ts';
export * from './cpio-read.ts';
export * from './newc-header.ts';
