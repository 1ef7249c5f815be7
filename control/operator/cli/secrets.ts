// `mway secrets --group G|--peer P --secret-group S --values K=V…`: each value is sealed with
// ML-KEM to each target peer's certificate (checked against our anchors first), so the broker
// relays ciphertext only.
import { defineCommand } from 'citty';
import { values as all } from '../../../common/index.ts';
import { isName } from '../../wire/index.ts';
import { usageError } from '../operator-error.ts';
import { runJob, targetArgs } from './shared.ts';

export default defineCommand({
  args: {
    ...targetArgs,
    'secret-group': { type: 'string', required: true, description: 'Layer or group the secrets belong to' },
    values: {
      type: 'string',
      required: true,
      repeatable: true,
      description: 'K=V (repeatable; also after --values)',
    },
    more: { type: 'positional', required: false, variadic: true, description: 'More K=V pairs' },
  },
  run({ args }) {
    const target = args['secret-group'];
    if (!isName(target)) throw usageError(`--secret-group ${target} is not a name`);
    // `--values A=1 B=2` and `--values A=1 --values B=2` both work.
    const trailing = (args._ ?? []).map(String);
    const pairs = [...new Set([...all(args.values), ...trailing])].filter((x) => x.includes('='));
    const values: Record<string, string> = {};
    for (const p of pairs) {
      const k = p.slice(0, p.indexOf('='));
      if (!isName(k)) throw usageError(`Secret name ${JSON.stringify(k)} is not a name`);
      values[k] = p.slice(p.indexOf('=') + 1);
    }
    if (Object.keys(values).length === 0) throw usageError('--values needs at least one K=V');
    return runJob(args, 'secrets.put', (peers, c) => ({ target, values: c.sealFor(peers, target, values) }));
  },
});
