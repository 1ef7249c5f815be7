// formats/tar/: the POSIX ustar header (the .mwl container's framing, layers/mwl-tar.ts).
export * from './ustar-header.ts';
