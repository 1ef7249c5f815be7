// Child program for activation.test.ts, run in a private mount namespace: activates a
// payload that sits at an offset inside a bigger file (as in a .mwl), builds an app root
// over it and a library payload and a base, and reports what the root shows.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { activatePayload, deactivatePayload } from '../../../agent/layers/layer-activation.ts';
import { mountAppRoot, mountSkeletonTmpfs, unmountAppRoot } from '../../../agent/layers/overlay-root.ts';

const args = process.argv.slice(2);
if (args.length !== 7) throw new Error('usage: activation-child.ts DIR APP OFF SIZE LIB OFF SIZE');
const [dir, appFile, appOffset, appSize, libFile, libOffset, libSize] = args as [
  string,
  string,
  string,
  string,
  string,
  string,
  string,
];
const area = (file: string, off: string, size: string) => ({
  path: file,
  payloadOffset: Number(off),
  payloadSize: Number(size),
  verityOffset: 0,
  veritySize: 0,
  rootHash: '',
});
const app = await activatePayload('app', area(appFile, appOffset, appSize), join(dir, 'm-app'), 'userspace');
const lib = await activatePayload('lib', area(libFile, libOffset, libSize), join(dir, 'm-lib'), 'userspace');
const skel = join(dir, 'skel');
await mountSkeletonTmpfs(skel);
const root = join(dir, 'root');
await mountAppRoot(skel, 'app', [app.mountPoint, lib.mountPoint, join(dir, 'base')], ['shop'], root);
const out = {
  top: (await readdir(root)).sort(),
  who: await readFile(join(root, 'etc/who'), 'utf8'),
  lib: await readFile(join(root, 'lib/libx'), 'utf8'),
  base: await readFile(join(root, 'base-only'), 'utf8'),
  groups: await readdir(join(root, 'data/group')),
  readOnly: await writeFile(join(root, 'new'), 'x').then(
    () => false,
    (e: NodeJS.ErrnoException) => e.code === 'EROFS',
  ),
};
await unmountAppRoot(skel, 'app', root);
await deactivatePayload(app);
await deactivatePayload(lib);
process.stdout.write(`${JSON.stringify(out)}\n`);
