// `mway-layer init NAME [DIR] [--kind module]`: a layer source directory with a manifest template
// and rootfs/; a module gets one action (`hello`) and the script it runs, packable as it is.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defineCommand } from 'citty';
import { commonArgs, makeOutputDir, output, UsageError } from '../../common/index.ts';
import { LayerError } from '../layer-error.ts';
import { validateManifest } from '../manifest.ts';

export function template(name: string): Record<string, unknown> {
  return {
    name,
    version: '0.1.0',
    kind: 'app',
    architecture: 'x86_64',
    description: `${name} (edit me)`,
    dependencies: [],
    provides: [],
    groups: [],
    data: { private: true, groups: [], common: false },
    services: [
      {
        name,
        execStart: [`/bin/${name}`],
        environment: {},
        workingDirectory: '/',
        user: 'nobody',
        type: 'simple',
        restart: 'on-failure',
        restartSec: 0.1,
        restartMaxDelaySec: 30,
        timeoutStartSec: 90,
        after: [],
        requires: [],
        killSignal: 'SIGTERM',
        timeoutStopSec: 10,
        capabilityBoundingSet: [],
        privateNetwork: false,
      },
    ],
    actions: [],
  };
}

/** A module's template: no service, one action with an argument schema, run by rootfs/<name>/hello. */
export function moduleTemplate(name: string): Record<string, unknown> {
  return {
    name,
    version: '0.1.0',
    kind: 'module',
    architecture: 'x86_64',
    description: `${name} (edit me)`,
    dependencies: [],
    data: { private: true, groups: [], common: false },
    verb: { name: name.replace(/[^a-z0-9-]/g, '-').slice(0, 32), description: `${name} (edit me)` },
    actions: [
      {
        name: 'hello',
        description: 'Says hello: one JSON object on stdout',
        argv: ['/bin/sh', `/${name}/hello`],
        args: {
          type: 'object',
          additionalProperties: false,
          required: ['who'],
          properties: { who: { type: 'string', maxLength: 64, pattern: '^[A-Za-z0-9 ._-]*$' } },
        },
        privileges: {
          user: 'nobody',
          capabilities: [],
          network: 'none',
          devices: [],
          data: { private: false },
        },
        output: { maxBytes: 4096 },
        timeoutSec: 10,
      },
    ],
  };
}

// The arguments are one JSON object on stdin; the answer is one JSON value on stdout. The
// pattern in the schema keeps `who` free of quotes, so printf can put it into JSON as is.
const HELLO = `#!/bin/sh
read -r args || true
who=$(printf '%s' "$args" | sed -n 's/.*"who":"\\([^"]*\\)".*/\\1/p')
printf '{"hello":"%s","action":"%s"}\\n' "$who" "$MWAY_ACTION"
`;

export default defineCommand({
  args: {
    ...commonArgs,
    kind: {
      type: 'string',
      description: 'app (a service, the default) or module (an action an operator runs with mway module run)',
    },
    name: { type: 'positional', required: true, description: 'Layer name (a-z 0-9 . _ -)' },
    dir: { type: 'positional', required: false, description: 'Directory (default: NAME)' },
  },
  async run({ args }) {
    const dir = args.dir ?? args.name;
    const kind = args.kind ?? 'app';
    if (kind !== 'app' && kind !== 'module')
      throw new UsageError(
        `--kind must be app or module, got ${JSON.stringify(kind)}`,
        'bad-value',
        '--kind',
      );
    const manifest = kind === 'module' ? moduleTemplate(args.name) : template(args.name);
    validateManifest(manifest, { source: true });
    await makeOutputDir(join(dir, 'rootfs'), {
      what: 'layer source directory',
      error: (code, message, options) => new LayerError(code, message, options),
    });
    try {
      await writeFile(join(dir, 'layer.json'), `${JSON.stringify(manifest, null, 2)}\n`, { flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST')
        throw new LayerError('E_INIT_EXISTS', `${join(dir, 'layer.json')} already exists`, { path: dir });
      throw e;
    }
    if (kind === 'module') {
      await mkdir(join(dir, 'rootfs', args.name));
      await writeFile(join(dir, 'rootfs', args.name, 'hello'), HELLO, { mode: 0o755 });
    }
    output(
      args.json,
      { dir, manifest: join(dir, 'layer.json'), rootfs: join(dir, 'rootfs') },
      () =>
        `created ${dir}/layer.json and ${dir}/rootfs/; put the app under rootfs/ and run: mway-layer pack ${dir} --key K --cert C -o ${args.name}.mwl`,
    );
  },
});
