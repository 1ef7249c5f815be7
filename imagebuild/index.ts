// imagebuild/: disk formats (dm-verity, GPT, cpio, filesystem images) and the image builder.
export * from './image-error.ts';
export * from './partition-types.ts';
