// `mway peers token create [--uses N] [--expires DURATION] [--group G,…] [--label K=V,…] -o FILE`:
// an enrollment token signed with this operator's key (its scope must cover `enroll` and the
// groups). Put FILE in the image and name it in the agent's
// `control.enroll.token`, or in a cloud-init seed's `milkyway.token`; `mway peers autosign` then
// accepts machines presenting it.
import { defineCommand } from 'citty';
import '../../../keys/cli/index.ts';
import { commonArgs, output, writeFileAtomic } from '../../../common/index.ts';
import { readCertificates, readPrivateKey, serialize } from '../../../keys/index.ts';
import { isName, MAX_TOKEN_TTL_MS, MAX_TOKEN_USES, signEnrollToken } from '../../wire/index.ts';
import { readOperatorConfig } from '../operator-client.ts';
import { usageError } from '../operator-error.ts';
import { parseLabels } from './peers-accept.ts';

/** `90`, `90s`, `30m`, `24h`, `7d` as milliseconds. */
export function parseDuration(s: string, flag: string): number {
  const m = /^(\d{1,9})([smhd]?)$/.exec(s.trim());
  if (m === null) throw usageError(`${flag} ${JSON.stringify(s)} is not a duration (90, 90s, 30m, 24h, 7d)`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit * 1000;
}

const create = defineCommand({
  meta: { name: 'create', description: 'Sign an enrollment token new machines present to be accepted' },
  args: {
    ...commonArgs,
    output: { type: 'string', alias: 'o', required: true, description: 'Token file to write (0600)' },
    uses: {
      type: 'string',
      numeric: 'integer',
      description: `Machines that may enroll with it (default 1, at most ${MAX_TOKEN_USES})`,
    },
    expires: { type: 'string', description: 'Lifetime: 90s, 30m, 24h, 7d (default 24h, at most 366d)' },
    group: {
      type: 'string',
      alias: 'peer-group',
      description: 'Groups G[,G…] the accepted machines join; --peer-group is the same',
    },
    label: { type: 'string', description: 'Labels K=V[,K=V…] the accepted machines get' },
  },
  async run({ args }) {
    const uses = args.uses === undefined ? 1 : Number(args.uses);
    if (!Number.isInteger(uses) || uses < 1 || uses > MAX_TOKEN_USES)
      throw usageError(`--uses must be 1..${MAX_TOKEN_USES}`);
    const ttlMs = parseDuration(args.expires ?? '24h', '--expires');
    if (ttlMs < 1000 || ttlMs > MAX_TOKEN_TTL_MS) throw usageError('--expires must be 1s..366d');
    const groups = args.group === undefined ? [] : args.group.split(',').map((g) => g.trim());
    for (const g of groups)
      if (!isName(g)) throw usageError(`--group ${JSON.stringify(g)} is not a group name`);
    const labels = args.label === undefined ? {} : parseLabels(args.label);
    const cfg = await readOperatorConfig();
    const token = signEnrollToken({
      fleet: cfg.fleet,
      groups,
      labels,
      uses,
      ttlMs,
      key: await readPrivateKey(cfg.key),
      chain: await readCertificates(cfg.cert),
    });
    // A bearer credential until it expires or is used up: readable by its owner only.
    await writeFileAtomic(args.output, `${new TextDecoder().decode(serialize(token))}\n`, 0o600);
    const p = token.payload as { id: string; expiresAt: string };
    output(
      args.json,
      { ...p, file: args.output },
      () =>
        `token ${p.id} -> ${args.output}: ${uses} use(s) until ${p.expiresAt}${groups.length > 0 ? `, groups ${groups.join(',')}` : ''}`,
    );
    return 0;
  },
});

export default defineCommand({
  meta: { name: 'token', description: 'Enrollment tokens for accepting machines without a manual step' },
  subCommands: { create },
});
