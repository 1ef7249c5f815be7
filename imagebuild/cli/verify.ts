// `mway-image verify DISK --trust ANCHOR…`: offline check of the GPT, every verity tree and
// every signature under the given anchors. Exit 0 when everything holds, 1 otherwise.
import { defineCommand } from 'citty';
import { commonArgs, failed, output, values } from '../../common/index.ts';
import { type Certificate, type Crl, readCertificates, readCrls } from '../../keys/index.ts';
import { verifyDisk } from '../disk-verify.ts';
import { ImageError } from '../image-error.ts';

export default defineCommand({
  args: {
    ...commonArgs,
    disk: { type: 'positional', required: true, description: 'Disk image (raw GPT)' },
    trust: {
      type: 'string',
      repeatable: true,
      description: 'Trust anchor certificate (vendor-root / user-root), repeatable',
    },
    crl: { type: 'string', repeatable: true, description: 'CRL file, repeatable' },
    'sb-cert': {
      type: 'string',
      description: 'Secure Boot db certificate (PEM) stage 1 must be signed under',
    },
    'kexec-cert': {
      type: 'string',
      description: 'Vendor kexec certificate (PEM) stage-2 kernels must be signed under',
    },
    'unsigned-stage1': {
      type: 'string',
      description: 'The unsigned stage-1 UKI the build wrote (OUT/stage1.unsigned.efi)',
    },
  },
  async run({ args }) {
    const trust = values(args.trust);
    if (trust.length === 0)
      throw new ImageError(
        'E_VERIFY_NO_TRUST',
        'mway-image verify needs at least one --trust ANCHOR certificate',
      );
    const anchors: Certificate[] = [];
    for (const t of trust) anchors.push(...(await readCertificates(t)));
    const crls: Crl[] = [];
    for (const c of values(args.crl)) crls.push(...(await readCrls(c)));
    const r = await verifyDisk(args.disk, {
      anchors,
      crls,
      ...(args['sb-cert'] === undefined ? {} : { sbCert: args['sb-cert'] }),
      ...(args['kexec-cert'] === undefined ? {} : { kexecCert: args['kexec-cert'] }),
      ...(args['unsigned-stage1'] === undefined ? {} : { unsignedStage1: args['unsigned-stage1'] }),
    });
    const human = () =>
      [
        ...r.checks.map(
          (c) =>
            `${c.ok ? 'ok  ' : 'FAIL'}  ${c.check.padEnd(22)} ${c.partition === undefined ? '' : `[${c.partition.index} ${c.partition.name}] `}${c.message}`,
        ),
        r.ok ? `${r.disk}: verified` : `${r.disk}: verification FAILED`,
      ].join('\n');
    if (r.ok) {
      output(args.json, r, human);
      return 0;
    }
    // The failure shape: the first failing check's code, every check (with its own code) in details.
    const bad = r.checks.filter((c) => !c.ok);
    const first = bad[0] as { code?: string } | undefined;
    const code = first?.code ?? 'E_INTERNAL';
    const message = `${bad.length} of ${r.checks.length} checks failed: ${bad.map((c) => c.check).join(', ')}`;
    return failed(
      args.json,
      { code, message, path: r.disk, details: { disk: r.disk, checks: r.checks } },
      human,
    );
  },
});
