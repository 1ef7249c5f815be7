// The 4 KiB block every MilkyWay format is built on: the data and hash block of dm-verity
// (the only size veritysetup, the kernel and our tree agree on here), the unit file system
// images are padded to, and the alignment of a layer's payload inside its .mwl. One constant
// so the five spellings it used to have cannot disagree.
export const BLOCK_SIZE = 4096;
