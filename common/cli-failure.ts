// The one failure shape every MilkyWay binary prints with --json (doc/cli.md, "Output"):
// `{ok: false, error: {code, message, path?, details?}}`. `npm run schemas` publishes it as
// doc/cli-failure.schema.json from this schema, so the document and the tests read one shape.
import { anyObject, defineFormat, object, text, v } from './schema.ts';

const failureSchema = object({
  ok: v.literal(false),
  error: object({
    code: text({ pattern: /^E_[A-Z0-9_]+$/, hint: 'is not an E_ code (doc/errors-*.md)', max: 64 }),
    message: v.string(),
    path: v.exactOptional(v.string()),
    details: v.exactOptional(anyObject),
  }),
});

export const cliFailureFormat = defineFormat({
  name: 'cli-failure',
  title: 'The --json failure shape of every MilkyWay command (doc/cli.md)',
  schema: failureSchema,
  error: (issue) => new TypeError(`Not the --json failure shape: ${issue.keyPath}: ${issue.problem}`),
});
