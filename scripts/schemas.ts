// `npm run schemas`: writes doc/<name>.schema.json for every format defined with
// common/schema.ts, from its Valibot schema (so the published JSON Schema cannot drift from
// the validator). `npm run schemas -- --check` only compares, and test/common/schemas.test.ts
// fails the same way when a committed file differs from what this emits.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { toJsonSchema } from '@valibot/to-json-schema';
import { cliFailureFormat } from '../common/cli-failure.ts';
import { cliResultFormat } from '../common/cli-result.ts';
import { type Format, type Schema, schemaId } from '../common/schema.ts';
import { agentConfigFormat, secureConfigFormat } from '../agent/index.ts';
import { brokerConfigFormat } from '../control/broker/broker-config.ts';
import { natsUsersFormat } from '../control/broker/nats-users.ts';
import { operatorConfigFormat } from '../control/operator/operator-client.ts';
import { messageFormat, peerFactsFormat } from '../control/wire/index.ts';
import { imageSpecFormat } from '../imagebuild/image-spec.ts';
import { layerManifestFormat, layerSourceFormat } from '../layers/index.ts';
import { bundleManifestFormat } from '../update/index.ts';
import { SHARED_RESULTS, VERB_RESULTS } from './cli-results.ts';

/** Every published format. */
export const FORMATS: readonly Format<Schema>[] = [
  imageSpecFormat,
  agentConfigFormat,
  secureConfigFormat,
  brokerConfigFormat,
  natsUsersFormat,
  operatorConfigFormat,
  messageFormat,
  peerFactsFormat,
  bundleManifestFormat,
  layerManifestFormat,
  layerSourceFormat,
  cliFailureFormat,
  cliResultFormat(Object.values(VERB_RESULTS), SHARED_RESULTS),
];

export const DOC = join(import.meta.dirname, '..', 'doc');

/** The JSON Schema (draft 2020-12) of `format`, as doc/<name>.schema.json holds it. */
export function publishedSchema(format: Format<Schema>): Record<string, unknown> {
  const body = toJsonSchema(format.schema, {
    target: 'draft-2020-12',
    // A pipe's first schema is the plain-object guard (common/schema.ts); the schema that
    // describes the value is the pipe's last.
    typeMode: 'output',
    errorMode: 'throw',
    ...(format.definitions === undefined ? {} : { definitions: { ...format.definitions } }),
  }) as Record<string, unknown>;
  const { $schema, ...rest } = body;
  return { $schema, $id: schemaId(format.name), title: format.title, ...rest };
}

export function schemaText(format: Format<Schema>): string {
  return `${JSON.stringify(publishedSchema(format), null, 2)}\n`;
}

if (import.meta.main) {
  const checkOnly = process.argv.includes('--check');
  let stale = 0;
  for (const f of FORMATS) {
    const file = join(DOC, `${f.name}.schema.json`);
    const want = schemaText(f);
    const have = await readFile(file, 'utf8').catch(() => '');
    if (have === want) continue;
    if (checkOnly) {
      console.error(`${file} differs from the schema in the code; run npm run schemas`);
      stale++;
    } else {
      await writeFile(file, want);
      console.log(`wrote ${file}`);
    }
  }
  process.exitCode = stale === 0 ? 0 : 1;
}
