// Getting a layer's payload out: the erofs image as a file (`extractPayload`), or its
// files (`extractFiles`) through `fsck.erofs --extract`, which reads the image without
// mounting and checks every inode. Integrity (signed digest + tree) is checked first;
// with `anchors`, the signatures too. Results land under a temporary name, are checked
// for unsafe entries and then renamed into place, so a failure leaves nothing behind.
// setuid and setgid bits are removed on the way out: extracting as root must not plant
// setuid-root files (pack refuses them; a layer made by other tools may still carry them).
import { createWriteStream } from 'node:fs';
import { chmod, lstat, mkdir, readdir, readlink, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { type Progress, requireTool, run, writeFailure } from '../common/index.ts';
import type { Certificate, Crl } from '../keys/index.ts';
import { type LayerFile, openLayerFile, readLayer } from './layer-file.ts';
import { LayerError } from './layer-error.ts';
import { checkPayload } from './payload-verity.ts';
import { symlinkStaysInside } from './rootfs-check.ts';
import { verifyLayerFile } from './verify.ts';

export interface ExtractOptions {
  /** Also verify the signatures against these anchors. */
  anchors?: readonly Certificate[];
  crls?: readonly Crl[];
  progress?: Progress;
}

async function checked(path: string, o: ExtractOptions): Promise<LayerFile> {
  const layer = await readLayer(path);
  if (o.anchors !== undefined && o.anchors.length > 0) {
    await verifyLayerFile(layer, {
      anchors: o.anchors,
      ...(o.crls === undefined ? {} : { crls: o.crls }),
      ...(o.progress === undefined ? {} : { progress: o.progress }),
    });
  } else await checkPayload(layer, o.progress);
  return layer;
}

function tempNear(out: string): string {
  return join(dirname(out), `.${basename(out)}.tmp-${process.pid}-${Date.now()}`);
}

async function copyRange(layer: LayerFile, out: string): Promise<void> {
  const fh = await openLayerFile(layer.path);
  try {
    await pipeline(
      fh.createReadStream({
        start: layer.payloadOffset,
        end: layer.payloadOffset + layer.payloadSize - 1,
        highWaterMark: 1 << 20,
        autoClose: false,
      }),
      createWriteStream(out, { mode: 0o644 }),
    );
  } finally {
    await fh.close();
  }
}

/** Writes the verified payload.erofs image to `outPath`. */
export async function extractPayload(
  path: string,
  outPath: string,
  o: ExtractOptions = {},
): Promise<{ size: number }> {
  const layer = await checked(path, o);
  const tmp = tempNear(outPath);
  try {
    await copyRange(layer, tmp);
    await rename(tmp, outPath);
  } catch (e) {
    // force ignores only ENOENT: under a path that is not a directory rm fails too (ENOTDIR).
    await rm(tmp, { force: true }).catch(() => {});
    throw new LayerError('E_EXTRACT_WRITE', `Cannot write ${outPath}: ${writeFailure(e)}`, {
      path: outPath,
      cause: e,
    });
  }
  return { size: layer.payloadSize };
}

export interface ExtractedTree {
  files: number;
  dirs: number;
  symlinks: number;
  /** Entries whose setuid/setgid bits were removed, with the mode the image gave them. */
  stripped: { path: string; mode: string }[];
}

/**
 * Refuses device nodes, FIFOs, sockets and symlinks climbing out of `root` after extraction,
 * and removes setuid/setgid bits. An explicit stack: the image's depth is the attacker's.
 */
async function auditTree(root: string): Promise<ExtractedTree> {
  const counts: ExtractedTree = { files: 0, dirs: 0, symlinks: 0, stripped: [] };
  const stack = [''];
  const walk = async (rel: string): Promise<void> => {
    const abs = rel === '' ? root : join(root, rel);
    const st = await lstat(abs);
    if ((st.mode & 0o6000) !== 0 && !st.isSymbolicLink()) {
      counts.stripped.push({ path: `/${rel}`, mode: (st.mode & 0o7777).toString(8).padStart(4, '0') });
      await chmod(abs, st.mode & 0o1777);
    }
    if (st.isDirectory()) {
      counts.dirs++;
      for (const n of (await readdir(abs)).sort().reverse()) stack.push(rel === '' ? n : `${rel}/${n}`);
    } else if (st.isFile()) counts.files++;
    else if (st.isSymbolicLink()) {
      counts.symlinks++;
      const target = await readlink(abs);
      if (!symlinkStaysInside(rel, target)) {
        throw new LayerError(
          'E_EXTRACT_UNSAFE',
          `payload entry ${rel} is a symlink to ${target}, which leaves the tree`,
          { path: rel },
        );
      }
    } else {
      throw new LayerError('E_EXTRACT_UNSAFE', `payload entry ${rel} is a device node, FIFO or socket`, {
        path: rel,
      });
    }
  };
  while (stack.length > 0) await walk(stack.pop() as string);
  return counts;
}

/** Extracts the payload's files into `dir` (which must not exist or be empty). */
export async function extractFiles(
  path: string,
  dir: string,
  o: ExtractOptions = {},
): Promise<ExtractedTree> {
  try {
    const entries = await readdir(dir);
    if (entries.length > 0) throw new LayerError('E_EXTRACT_TARGET', `${dir} is not empty`, { path: dir });
  } catch (e) {
    if (e instanceof LayerError) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new LayerError('E_EXTRACT_TARGET', `Cannot use ${dir}: ${(e as Error).message}`, {
        path: dir,
        cause: e,
      });
    }
  }
  await requireTool('fsck.erofs');
  const layer = await checked(path, o);
  const work = tempNear(dir);
  await mkdir(work, { mode: 0o700 });
  try {
    const image = join(work, 'payload.erofs');
    const tree = join(work, 'tree');
    await copyRange(layer, image);
    // --no-preserve-owner: files belong to whoever extracts, as with `tar` run by a user.
    await run('fsck.erofs', [`--extract=${tree}`, '--no-preserve-owner', image], { timeout: 600_000 });
    const counts = await auditTree(tree);
    await rm(dir, { recursive: true, force: true });
    await rename(tree, dir);
    return counts;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}
