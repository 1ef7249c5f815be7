// layers/: signed application layers (.mwl). Re-exports only; see doc/internal-apis.md.
export * from './cil-syntax.ts';
export * from './extract.ts';
export * from './layer-codes.ts';
export * from './layer-error.ts';
export * from './layer-file.ts';
export * from './manifest.ts';
export * from './mwl-write.ts';
export * from './pack.ts';
export * from './policy-check.ts';
export * from './policy-module.ts';
export * from './resolve.ts';
export * from './rootfs-check.ts';
export * from './selinux-names.ts';
export * from './selinux-policy.ts';
export { parseService, SIGNALS } from './service.ts';
export * from './sign.ts';
export * from './verify.ts';
export * from './oci-import.ts';
