// `mway-image verify DISK --trust ANCHOR…`: offline check of the GPT, every verity tree and
// every signature under the given anchors. Exit 0 when everything holds, 1 otherwise.
import { defineCommand } from 'citty';
import { commonArgs, EXIT_FAIL, output, values } from '../../common/index.ts';
import { type Certificate, type Crl, readCertificates, readCrls } from '../../keys/index.ts';
import { verifyDisk } from '../disk-verify.ts';
import { ImageError } from '../image-error.ts';

export default defineCommand({
  meta: {
    name: 'verify',
    description: 'Check DISK offline: GPT, every verity tree, every signature, under --trust anchors',
  },
  args: {
    ...commonArgs,
    disk: { type: 'positional', required: true, description: 'Disk image (raw GPT)' },
    trust: {
      type: 'string',
      repeatable: true,
      description: 'Trust anchor certificate (vendor-root / user-root), repeatable',
    },
    crl: { type: 'string', repeatable: true, description: 'CRL file, repeatable' },
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
    const r = await verifyDisk(args.disk, { anchors, crls });
    output(args.json, r, () =>
      [
        ...r.checks.map(
          (c) =>
            `${c.ok ? 'ok  ' : 'FAIL'}  ${c.check.padEnd(22)} ${c.partition === undefined ? '' : `[${c.partition.index} ${c.partition.name}] `}${c.message}`,
        ),
        r.ok ? `${r.disk}: verified` : `${r.disk}: verification FAILED`,
      ].join('\n'),
    );
    return r.ok ? 0 : EXIT_FAIL;
  },
});
