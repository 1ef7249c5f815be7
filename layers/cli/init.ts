// `mway-layer init NAME [DIR]`: a layer source directory with a manifest template and rootfs/.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defineCommand } from 'citty';
import { commonArgs, makeOutputDir, output } from '../../common/index.ts';
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

export default defineCommand({
  args: {
    ...commonArgs,
    name: { type: 'positional', required: true, description: 'Layer name (a-z 0-9 . _ -)' },
    dir: { type: 'positional', required: false, description: 'Directory (default: NAME)' },
  },
  async run({ args }) {
    const dir = args.dir ?? args.name;
    const manifest = template(args.name);
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
    output(
      args.json,
      { ok: true, dir, manifest: join(dir, 'layer.json'), rootfs: join(dir, 'rootfs') },
      () =>
        `created ${dir}/layer.json and ${dir}/rootfs/; put the app under rootfs/ and run: mway-layer pack ${dir} --key K --cert C -o ${args.name}.mwl`,
    );
  },
});
