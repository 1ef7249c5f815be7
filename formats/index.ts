// formats/: the on-disk formats MilkyWay writes and reads — dm-verity, GPT, newc cpio and
// file system images — with nothing MilkyWay-specific in them. Imports only common/.
// Re-exports only; see doc/internal-apis.md.
export * from './format-codes.ts';
export * from './format-error.ts';
export * from './guid.ts';
export * from './verity/index.ts';
export * from './gpt/index.ts';
export * from './cpio/index.ts';
export * from './fs/index.ts';
export * from './tar/index.ts';
export * from './block-size.ts';
export { type Field, type FieldTable, fieldTable } from './_field-table.ts';
