// layers/: signed application layers (.mwl). Re-exports only; see doc/internal-apis.md.
export * from './layer-error.ts';
export * from './manifest.ts';
