// `mway compose up -f FILE --group G`: a compose project installed on a target in ONE signed
// rollout. Its services become the layers `mway-layer import-compose` makes (imported and
// signed here with the user's --key/--cert, or taken from --layers DIR where that command put
// them); their pieces go out as signed `layer.chunk` jobs, then one `layer.install` names
// every layer's digest, dependencies first, and each peer installs them as a set: all, or the
// ones this rollout added are removed again (doc/commands.md, "Actions").
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineCommand, type ParsedArgs } from 'citty';
import { createProgress, progressArgs } from '../../../common/index.ts';
import { passphraseFromEnv, readCertificates, readPrivateKey } from '../../../keys/index.ts';
import { importCompose, type LayerManifest, readComposeProject, readLayer } from '../../../layers/index.ts';
import { installLayerSet, type OperatorClient } from '../operator-client.ts';
import { OperatorError, usageError } from '../operator-error.ts';
import { finish, jsonMode, targetArgs, targetOf, withClient } from './shared.ts';

interface SetLayer {
  path: string;
  manifest: LayerManifest;
}

/** The layers `mway-layer import-compose -o DIR` wrote for the file's services. */
async function importedLayers(file: string, dir: string, name?: string): Promise<SetLayer[]> {
  const project = await readComposeProject(file, name);
  const out: SetLayer[] = [];
  for (const s of project.services) {
    const layer = `${project.name}-${s.name}`;
    const path = join(dir, `${layer}.mwl`);
    const manifest = await readLayer(path)
      .then((l) => l.manifest)
      .catch((e: unknown) => {
        throw new OperatorError(
          'E_COMPOSE_LAYERS',
          `services.${s.name}: no layer ${path} (${(e as Error).message})`,
          { path, cause: e },
        );
      });
    if (manifest.name !== layer || !manifest.groups.includes(project.name))
      throw new OperatorError(
        'E_COMPOSE_LAYERS',
        `services.${s.name}: ${path} is layer ${manifest.name} of groups [${manifest.groups.join(', ')}], not ${layer} of group ${project.name}`,
        { path },
      );
    out.push({ path, manifest });
  }
  return out;
}

/**
 * Dependencies first: a layer whose services order after or require another layer's services
 * comes after it (depends_on). A cycle cannot come from import-compose, which refuses one; the
 * rest keep the file's order.
 */
export function dependencyOrder(set: readonly SetLayer[]): SetLayer[] {
  const byName = new Map(set.map((l) => [l.manifest.name, l]));
  const needs = (l: SetLayer) =>
    new Set(
      l.manifest.services
        .flatMap((s) => [...s.after, ...s.requires])
        .map((r) => r.split('/')[0] ?? '')
        .filter((n) => n !== l.manifest.name && byName.has(n)),
    );
  const done = new Set<string>();
  const out: SetLayer[] = [];
  while (out.length < set.length) {
    const next = set.find((l) => !done.has(l.manifest.name) && [...needs(l)].every((n) => done.has(n)));
    if (next === undefined)
      throw new OperatorError(
        'E_COMPOSE_LAYERS',
        `The layers' services depend on each other in a cycle: ${set
          .filter((l) => !done.has(l.manifest.name))
          .map((l) => l.manifest.name)
          .join(', ')}`,
      );
    done.add(next.manifest.name);
    out.push(next);
  }
  return out;
}

/** The flags of `compose up` but the file's (`mway docker start` names it --compose). */
export const composeUpArgs = {
  ...targetArgs,
  ...progressArgs,
  key: {
    type: 'string',
    description: "The user's signing key for the layers (passphrase from MWAY_KEY_PASSPHRASE)",
  },
  cert: { type: 'string', description: "The user's certificate chain (PEM, leaf first)" },
  layers: {
    type: 'string',
    description: 'Take the layers `mway-layer import-compose FILE -o DIR` wrote to DIR instead',
  },
  name: {
    type: 'string',
    description: 'Project name when the file has no name: (default: its directory’s)',
  },
  'tls-verify': {
    type: 'boolean',
    default: true,
    description: 'Verify registries’ TLS certificates (--no-tls-verify for a plain-HTTP registry)',
  },
} as const;

type ComposeUpFlags = ParsedArgs<typeof composeUpArgs>;

/**
 * `mway compose up`: the set imported (or read from --layers) and installed in one rollout;
 * `then` runs on the same connection once it succeeded (`mway docker start`'s enable and
 * start), its exit code the command's.
 */
export async function composeUp(
  file: string | undefined,
  args: ComposeUpFlags,
  then?: (c: OperatorClient, layers: LayerManifest[]) => Promise<number>,
  fileFlag = '-f FILE',
): Promise<number> {
  if (file === undefined) throw usageError(`Give the compose file with ${fileFlag}`);
  const target = targetOf(args);
  const signing = args.key !== undefined || args.cert !== undefined;
  if (signing === (args.layers !== undefined))
    throw usageError('Give either --key KEY --cert CERT (import and sign now) or --layers DIR');
  if (signing && (args.key === undefined || args.cert === undefined))
    throw usageError('Give both --key and --cert (the user identity that signs the layers)');
  if (args.async === true) throw usageError('--async: the layers are sent in pieces, each must arrive first');
  const json = jsonMode(args);
  const progress = createProgress({ json: args.json, quiet: args.quiet });
  const name = args.name === undefined ? {} : { name: args.name };
  let work: string | undefined;
  try {
    let set: SetLayer[];
    if (args.layers !== undefined) set = await importedLayers(file, args.layers, args.name);
    else {
      const passphrase = passphraseFromEnv();
      const key = await readPrivateKey(args.key as string, passphrase === undefined ? {} : { passphrase });
      const chain = await readCertificates(args.cert as string);
      work = await mkdtemp(join(tmpdir(), 'mway-compose-'));
      const r = await importCompose({
        file,
        key,
        chain,
        outDir: work,
        tlsVerify: args['tls-verify'],
        progress,
        ...name,
      });
      set = r.layers.map((l) => ({ path: l.path, manifest: l.result.manifest }));
    }
    const ordered = dependencyOrder(set);
    progress.step(`installing ${ordered.map((l) => l.manifest.name).join(', ')} as one set`);
    return await withClient(async (c) => {
      const r = await installLayerSet(
        c,
        ordered.map((l) => l.path),
        {
          target,
          ...(args.batch === undefined ? {} : { batch: args.batch }),
          ...(args['max-fail'] === undefined ? {} : { maxFail: args['max-fail'] }),
          timeoutMs: (args.timeout === undefined ? 600 : Number(args.timeout)) * 1000,
          dryRun: args['dry-run'] === true,
        },
        (done, total) => {
          progress.bytes(done, total);
          if (done === total) progress.step('waiting for the peers to verify and install the set');
        },
      );
      progress.done();
      const exit = finish(r, json, then !== undefined);
      if (exit !== 0 || then === undefined || args['dry-run'] === true) return exit;
      return then(
        c,
        ordered.map((l) => l.manifest),
      );
    });
  } finally {
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  }
}

const up = defineCommand({
  meta: { name: 'up', description: 'Install a compose project on a target in one signed rollout' },
  args: {
    ...composeUpArgs,
    file: { type: 'string', alias: 'f', description: 'The compose file (docker-compose.yml, compose.yaml)' },
  },
  run({ args }) {
    return composeUp(args.file, args);
  },
});

export default defineCommand({
  meta: { name: 'compose', description: 'Compose projects as layer sets on groups or peers' },
  subCommands: { up },
});
