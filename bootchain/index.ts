// Public API of bootchain/ (re-exports only): the stage-2 descriptor, the stage-1 config, boot
// slots, the C verifier's build, Secure Boot signing and key enrollment (doc/boot.md).
export { BOOT_PARTITION_TYPE, DEFAULT_BOOT_MIB } from './boot-partition.ts';
export { BOOTCHAIN_CODES, type BootchainCode } from './bootchain-codes.ts';
export { BootchainError } from './bootchain-error.ts';
export * from './slot.ts';
export * from './stage1-config.ts';
export * from './stage2-descriptor.ts';
export * from './stage2-sign.ts';
export { buildVerifier, DEFAULT_BUILD_CACHE } from './verifier-build.ts';
export * from './secure-boot.ts';
export * from './enrollment.ts';
