// formats/gpt/: GPT disks and the DPS partition type table (doc/gpt.md).
export * from './gpt-disk.ts';
export * from './gpt-entries-write.ts';
export * from './gpt-header.ts';
export * from './partition-types.ts';
export * from './gpt-check.ts';
