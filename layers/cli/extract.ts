// `mway-layer extract FILE.mwl DIR`: the payload's files (or with --image, the erofs image).
import { defineCommand } from 'citty';
import { commonArgs, createProgress, progressArgs, output } from '../../common/index.ts';
import { extractFiles, extractPayload } from '../extract.ts';
import { loadTrust } from './shared.ts';

export default defineCommand({
  args: {
    ...commonArgs,
    ...progressArgs,
    file: { type: 'positional', required: true, description: 'Layer .mwl' },
    dir: {
      type: 'positional',
      required: true,
      description: 'Target directory (must not exist or be empty); with --image, the image file',
    },
    trust: {
      type: 'string',
      repeatable: true,
      description: 'Also verify signatures against this anchor (repeatable)',
    },
    crl: { type: 'string', repeatable: true, description: 'CRL file (repeatable)' },
    image: { type: 'boolean', description: 'Write the erofs image instead of its files' },
  },
  async run({ args }) {
    const { anchors, crls } = await loadTrust(args);
    const o = { anchors, crls, progress: createProgress({ json: args.json, quiet: args.quiet }) };
    if (args.image === true) {
      const r = await extractPayload(args.file, args.dir, o);
      output(
        args.json,
        { image: args.dir, size: r.size, signaturesChecked: anchors.length > 0 },
        () => `wrote ${args.dir} (${r.size} bytes)`,
      );
      return;
    }
    const r = await extractFiles(args.file, args.dir, o);
    output(args.json, { dir: args.dir, ...r, signaturesChecked: anchors.length > 0 }, () =>
      [
        `extracted ${r.files} files, ${r.dirs} directories, ${r.symlinks} symlinks into ${args.dir}${anchors.length > 0 ? '' : ' (integrity checked; no --trust, signatures not checked)'}`,
        ...r.stripped.map((s) => `removed setuid/setgid from ${s.path} (mode ${s.mode} in the image)`),
      ].join('\n'),
    );
  },
});
