// `mway-image verity format|verify`: build or check a dm-verity hash tree (doc/verity-format.md).
import { defineCommand } from 'citty';
import { commonArgs, failed, output } from '../../common/index.ts';
import { FormatError, formatVerity, isFormatError, verifyVerity } from '../../formats/index.ts';

function offsetArg(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v))
    throw new FormatError('E_VERITY_BAD_OFFSET', `Cannot use hash offset ${JSON.stringify(v)}: not a number`);
  return Number(v);
}

const format = defineCommand({
  meta: { name: 'format', description: 'Build the hash tree of DATA into HASH (veritysetup-compatible)' },
  args: {
    ...commonArgs,
    data: { type: 'positional', required: true, description: 'Data file (size a multiple of 4096)' },
    hash: {
      type: 'positional',
      required: true,
      description: 'Hash file (may be DATA itself with --hash-offset)',
    },
    salt: { type: 'string', description: 'Salt as hex (default: 32 random bytes)' },
    uuid: { type: 'string', description: 'Superblock UUID (default: random)' },
    'hash-offset': { type: 'string', description: 'Byte offset of the hash area in HASH' },
    pad: { type: 'boolean', description: 'Zero-pad DATA to a multiple of 4096' },
  },
  async run({ args }) {
    const hashOffset = offsetArg(args['hash-offset']);
    const r = await formatVerity(args.data, {
      hashPath: args.hash,
      ...(hashOffset === undefined ? {} : { hashOffset }),
      ...(args.salt === undefined ? {} : { salt: args.salt }),
      ...(args.uuid === undefined ? {} : { uuid: args.uuid }),
      ...(args.pad === true ? { pad: true } : {}),
    });
    output(args.json, r, () =>
      [
        `Root hash:   ${r.rootHash}`,
        `Salt:        ${r.salt}`,
        `UUID:        ${r.uuid}`,
        `Data blocks: ${r.dataBlocks}`,
        `Hash offset: ${r.hashOffset}`,
        `Hash size:   ${r.hashSize}`,
      ].join('\n'),
    );
    return 0;
  },
});

const verify = defineCommand({
  meta: {
    name: 'verify',
    description: 'Check DATA and HASH against ROOTHASH; exit 1 naming the first bad block',
  },
  args: {
    ...commonArgs,
    data: { type: 'positional', required: true, description: 'Data file' },
    hash: { type: 'positional', required: true, description: 'Hash file' },
    roothash: { type: 'positional', required: true, description: 'Root hash (64 hex digits)' },
    'hash-offset': { type: 'string', description: 'Byte offset of the hash area in HASH' },
  },
  async run({ args }) {
    const hashOffset = offsetArg(args['hash-offset']);
    try {
      const sb = await verifyVerity(
        args.data,
        args.hash,
        args.roothash,
        hashOffset === undefined ? {} : { hashOffset },
      );
      output(args.json, { dataBlocks: sb.dataBlocks }, () => `OK: ${sb.dataBlocks} data blocks verified`);
      return 0;
    } catch (e) {
      if (!isFormatError(e, 'E_VERITY_MISMATCH')) throw e;
      return failed(args.json, e);
    }
  },
});

export default defineCommand({
  subCommands: { format, verify },
});
