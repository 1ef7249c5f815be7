// `mway-image gpt show DISK`: the partition table as MilkyWay reads it (doc/gpt.md).
import { defineCommand } from 'citty';
import { commonArgs, output } from '../../common/index.ts';
import { readGpt } from '../../formats/index.ts';
import { PARTITION_TYPES } from '../../platform/index.ts';

const show = defineCommand({
  meta: { name: 'show', description: 'Print the GPT of DISK (falls back to the backup header)' },
  args: { ...commonArgs, disk: { type: 'positional', required: true, description: 'Disk image' } },
  async run({ args }) {
    const g = await readGpt(args.disk, { typeNames: PARTITION_TYPES });
    const json = {
      diskGuid: g.diskGuid,
      sizeBytes: g.sizeBytes.toString(),
      usedBackup: g.usedBackup,
      partitions: g.partitions.map((p) => ({
        index: p.index,
        name: p.name,
        type: p.type,
        typeName: p.typeName ?? null,
        uuid: p.uuid,
        firstLba: p.firstLba.toString(),
        lastLba: p.lastLba.toString(),
        sizeBytes: p.sizeBytes.toString(),
        attributes: `0x${p.attributes.toString(16)}`,
        flags: { readOnly: p.flags.readOnly, noAuto: p.flags.noAuto, growFs: p.flags.growFs },
      })),
    };
    output(args.json, json, () =>
      [
        `Disk ${g.diskGuid}, ${g.sizeBytes} bytes${g.usedBackup ? ' (primary header damaged: read the backup)' : ''}`,
        ...g.partitions.map(
          (p) =>
            `${p.index}  ${p.firstLba}..${p.lastLba}  ${p.sizeBytes} B  ${p.typeName ?? p.type}  ${p.uuid}  "${p.name}"` +
            `${p.flags.readOnly ? ' read-only' : ''}${p.flags.noAuto ? ' no-auto' : ''}${p.flags.growFs ? ' grow' : ''}`,
        ),
      ].join('\n'),
    );
    return 0;
  },
});

export default defineCommand({
  subCommands: { show },
});
