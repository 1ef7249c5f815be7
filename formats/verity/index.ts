// formats/verity/: dm-verity format 1 as veritysetup writes it (doc/verity-format.md).
export * from './verity-area.ts';
export * from './verity-format.ts';
export * from './verity-geometry.ts';
export * from './verity-hasher.ts';
export * from './verity-seed.ts';
export * from './verity-superblock.ts';
export * from './verity-verify.ts';
