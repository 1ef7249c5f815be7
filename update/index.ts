// update/: signed A/B CoreOS updates — the update bundle, the slot state on the GPT, writing
// the inactive slot, the update state and the health gate. Re-exports only; see
// doc/update-bundle.md and doc/how-to-update.md.
export * from './bundle-create.ts';
export * from './bundle-file.ts';
export * from './bundle-manifest.ts';
export * from './bundle-verify.ts';
export * from './disk-slots.ts';
export * from './downgrade-permit.ts';
export * from './slot-install.ts';
export * from './slot-switch.ts';
export * from './update-codes.ts';
export * from './update-error.ts';
export * from './update-state.ts';
