// `mway-image inspect DISK`: partitions, file systems, root hashes and signers, read offline
// and without trust (verify checks them).
import { defineCommand } from 'citty';
import { commonArgs, formatBytes, output } from '../../common/index.ts';
import { inspectDisk } from '../disk-inspect.ts';

export default defineCommand({
  args: { ...commonArgs, disk: { type: 'positional', required: true, description: 'Disk image (raw GPT)' } },
  async run({ args }) {
    const r = await inspectDisk(args.disk);
    output(args.json, r, () => {
      const lines = [
        `Disk ${r.disk}: GPT ${r.diskGuid}, ${formatBytes(r.sizeBytes)}${r.usedBackupGpt ? ' (primary GPT damaged)' : ''}`,
      ];
      for (const p of r.partitions)
        lines.push(
          `  ${String(p.index).padStart(2)}  ${p.name.padEnd(28)} ${(p.role ?? p.typeName ?? p.type).padEnd(22)} ${formatBytes(p.sizeBytes).padStart(10)}  ${p.filesystem ?? '-'}${p.readOnly ? '  read-only' : ''}`,
        );
      for (const p of r.layout) lines.push(`  not as the layout has it: ${p.code}: ${p.message}`);
      if (r.chain !== null) {
        const s1 = r.chain.stage1;
        lines.push(
          s1 === null
            ? 'Stage 1: no EFI/BOOT/BOOTX64.EFI on the ESP'
            : `Stage 1: ${s1.secureBootSigners.length === 0 ? 'not signed for Secure Boot' : `signed for Secure Boot by ${s1.secureBootSigners.join(', ')}`}`,
        );
        const c = s1?.config;
        if (c === null) lines.push('  no readable stage-1 config');
        else if (c !== undefined) {
          lines.push(
            `  config signed by ${c.signer ?? '?'}: rollback floor ${c.rollbackFloor}, certificates root hash ${c.certsRootHash}`,
          );
          for (const k of c.pinned)
            lines.push(`  pins ${k.algorithm} key ${k.label} (certificate ${k.certFingerprint})`);
        }
        for (const sl of r.chain.slots) {
          const state = `priority ${sl.priority}, tries ${sl.tries}, ${sl.successful ? 'successful' : 'not yet successful'}`;
          const d = sl.stage2;
          lines.push(
            d === null
              ? `Stage 2 slot ${sl.slot} (${sl.partition}, ${state}): empty or unreadable`
              : `Stage 2 slot ${sl.slot} (${sl.partition}, ${state}): ${d.name} ${d.version}, rollback index ${d.rollbackIndex}, signed by ${d.signer}; kernel kexec-signed by ${d.kexecSigners.join(', ') || 'nobody'}`,
          );
        }
      }
      if (r.cmdline !== null) lines.push(`stage-2 command line (slot a): ${r.cmdline}`);
      if (r.coreos !== null) {
        lines.push(`CoreOS ${r.coreos.label}: root hash ${r.coreos.rootHash}`);
        if (r.coreos.cmdlineRootHash !== r.coreos.rootHash)
          lines.push(`  slot a's stage-2 descriptor names ${r.coreos.cmdlineRootHash ?? 'no root hash'}`);
        lines.push(
          r.coreos.signature === null
            ? '  no readable verity signature'
            : `  signed by ${r.coreos.signature.signer ?? '?'} (certificate ${r.coreos.signature.certificateFingerprint})`,
        );
      }
      if (r.certificates !== null) {
        lines.push(`Certificates: root hash ${r.certificates.rootHash ?? '(not on the command line)'}`);
        for (const a of r.certificates.anchors) lines.push(`  ${a.role} ${a.subject} ${a.fingerprint}`);
      }
      if (r.secureConfig !== null)
        lines.push(
          `Secure config signed by ${r.secureConfig.signer ?? '?'}: ${JSON.stringify(r.secureConfig.payload)}`,
        );
      for (const l of r.layers)
        lines.push(
          `Layer ${l.name} ${l.version} (${l.file}, ${formatBytes(l.sizeBytes)}) signed by ${l.signers.join(', ')}`,
        );
      return lines.join('\n');
    });
    return 0;
  },
});
