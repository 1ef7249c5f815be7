// What each `milkyway-agent` verb prints under `result` with --json (doc/cli.md, "Output";
// published in doc/cli-result.schema.json by `npm run schemas`).
import { cliResult, schema } from '../../common/index.ts';

const { any, rows, shape, str } = cliResult;
const { v } = schema;

const layer = shape({ name: str, version: str, kind: str, state: str });
const service = shape({ name: str, state: str });

export const agentResults: cliResult.VerbResults = {
  // The agent itself: logs on stderr and /dev/kmsg, no JSON document on stdout.
  'milkyway-agent': null,
  'milkyway-agent run': null,
  'milkyway-agent ctl list': shape({ layers: rows(layer), services: rows(service) }),
  // GetStatus as the agent answers it, or one service's.
  'milkyway-agent ctl status': v.union([shape({ state: str, services: any }), service]),
  'milkyway-agent ctl logs': rows(shape({ time: str, stream: str, text: str })),
  'milkyway-agent ctl start': shape({ service: str, action: v.literal('start') }),
  'milkyway-agent ctl stop': shape({ service: str, action: v.literal('stop') }),
  'milkyway-agent ctl restart': shape({ service: str, action: v.literal('restart') }),
  'milkyway-agent ctl install': layer,
  'milkyway-agent ctl remove': shape({ layer: str, action: v.literal('remove') }),
  // One line per ServiceChanged or LayerChanged signal, as it comes.
  'milkyway-agent ctl watch': shape({
    member: v.picklist(['ServiceChanged', 'LayerChanged']),
    name: str,
    value: str,
  }),
  'milkyway-agent completion': null,
};
