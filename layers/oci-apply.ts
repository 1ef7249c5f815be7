// Applies one OCI/Docker image layer (a tar) onto a root directory the way a container
// runtime would: whiteouts (`.wh.NAME`) delete from lower layers, `.wh..wh..opq` empties a
// directory of lower-layer content, later entries replace earlier ones. Nothing is ever
// written through a symlink; links that leave the root and paths that climb out are refused;
// device nodes and FIFOs are dropped and reported.
import { createWriteStream } from 'node:fs';
import { chmod, link, lstat, mkdir, readdir, rm, symlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { LayerError } from './layer-error.ts';
import { forEachEntry, memberPath } from './oci-tar.ts';
import { symlinkStaysInside } from './rootfs-check.ts';

export interface Dropped {
  layer: number;
  path: string;
  reason: string;
}

async function exists(p: string): Promise<import('node:fs').Stats | undefined> {
  try {
    return await lstat(p);
  } catch {
    return undefined;
  }
}

/** Makes every ancestor of `rel` a real directory; refuses to go through a symlink or file. */
async function ensureParents(root: string, rel: string, what: string): Promise<void> {
  const parts = rel.split('/').slice(0, -1);
  let cur = '';
  for (const p of parts) {
    cur = cur === '' ? p : `${cur}/${p}`;
    const st = await exists(join(root, cur));
    if (st === undefined) await mkdir(join(root, cur), { mode: 0o755 });
    else if (st.isSymbolicLink()) {
      throw new LayerError('E_OCI_PATH', `${what}: ${rel} would be written through the symlink ${cur}`, {
        details: { member: rel },
      });
    } else if (!st.isDirectory()) {
      throw new LayerError('E_OCI_PATH', `${what}: ${rel} is below ${cur}, which is not a directory`, {
        details: { member: rel },
      });
    }
  }
}

/** Removes whatever is at `rel` (not following links). */
async function removeAt(root: string, rel: string): Promise<void> {
  await rm(join(root, rel), { recursive: true, force: true });
}

const MODE_MASK = 0o1777; // setuid/setgid are dropped (reported)

export async function applyLayer(
  root: string,
  layerPath: string,
  index: number,
  dropped: Dropped[],
): Promise<number> {
  const what = `image layer ${index + 1}`;
  const created = new Set<string>(); // paths written by this layer (opaque keeps them)
  const dirModes: [string, number][] = [];
  let entries = 0;
  await forEachEntry(layerPath, what, async (e) => {
    entries++;
    if (entries > 1_000_000) throw new LayerError('E_OCI_ARCHIVE', `${what} has more than 1,000,000 entries`);
    const h = e.header;
    const rel = memberPath(h.name, what);
    const base = posix.basename(rel);
    const dir = posix.dirname(rel) === '.' ? '' : posix.dirname(rel);
    if (base === '.wh..wh..opq') {
      await ensureParents(root, rel, what);
      const abs = join(root, dir);
      for (const n of await readdir(abs)) {
        const child = dir === '' ? n : `${dir}/${n}`;
        if (!created.has(child)) await removeAt(root, child);
      }
      return;
    }
    if (base.startsWith('.wh.')) {
      // The OCI image spec reserves `.wh..wh.*` for metadata (only the opaque marker exists);
      // `.wh..` and `.wh...` would name the directory itself or its parent.
      const name = base.slice(4);
      if (name === '' || name === '.' || name === '..' || name.startsWith('.wh.')) {
        throw new LayerError('E_OCI_WHITEOUT', `${what}: whiteout ${JSON.stringify(h.name)} names no file`, {
          details: { member: h.name },
        });
      }
      const victim = dir === '' ? name : `${dir}/${name}`;
      await ensureParents(root, victim, what);
      await removeAt(root, victim);
      return;
    }
    const abs = join(root, rel);
    const mode = (h.mode ?? 0o644) & 0o7777;
    if ((mode & 0o6000) !== 0 && h.type === 'file')
      dropped.push({ layer: index + 1, path: `/${rel}`, reason: 'setuid/setgid bit removed' });
    if (rel === '') {
      if (h.type !== 'directory')
        throw new LayerError('E_OCI_PATH', `${what}: the root entry is not a directory`);
      dirModes.push(['', mode & MODE_MASK]);
      return;
    }
    await ensureParents(root, rel, what);
    const old = await exists(abs);
    switch (h.type) {
      case 'directory': {
        if (old !== undefined && !old.isDirectory()) await removeAt(root, rel);
        if (old === undefined || !old.isDirectory()) await mkdir(abs, { mode: 0o755 });
        dirModes.push([rel, mode & MODE_MASK]);
        break;
      }
      case 'file':
      case 'contiguous-file':
      case null:
      case undefined: {
        if (old !== undefined) await removeAt(root, rel);
        await pipeline(e, createWriteStream(abs, { mode: 0o600, flags: 'wx' }));
        await chmod(abs, mode & MODE_MASK);
        break;
      }
      case 'symlink': {
        const target = h.linkname ?? '';
        if (target === '' || !symlinkStaysInside(rel, target)) {
          throw new LayerError(
            'E_OCI_LINK_ESCAPE',
            `${what}: symlink /${rel} -> ${target} leaves the image root`,
            { details: { member: rel, target } },
          );
        }
        if (old !== undefined) await removeAt(root, rel);
        await symlink(target, abs);
        break;
      }
      case 'link': {
        const raw = h.linkname ?? '';
        if (raw.startsWith('/')) {
          throw new LayerError(
            'E_OCI_LINK_ESCAPE',
            `${what}: hard link /${rel} -> ${raw} names an absolute path`,
            { details: { member: rel, target: raw } },
          );
        }
        let target: string;
        try {
          target = memberPath(raw, what);
        } catch {
          throw new LayerError(
            'E_OCI_LINK_ESCAPE',
            `${what}: hard link /${rel} -> ${raw} leaves the image root`,
            { details: { member: rel, target: raw } },
          );
        }
        const tst = await exists(join(root, target));
        if (target === '' || tst === undefined || !tst.isFile()) {
          throw new LayerError(
            'E_OCI_LINK_ESCAPE',
            `${what}: hard link /${rel} -> ${raw} does not name a regular file in the image`,
            { details: { member: rel, target: raw } },
          );
        }
        await ensureParents(root, target, what);
        if (old !== undefined) await removeAt(root, rel);
        await link(join(root, target), abs);
        break;
      }
      case 'character-device':
      case 'block-device':
      case 'fifo':
        dropped.push({
          layer: index + 1,
          path: `/${rel}`,
          reason: `${h.type} dropped (layers hold no device nodes)`,
        });
        if (old !== undefined) await removeAt(root, rel);
        break;
      default:
        dropped.push({ layer: index + 1, path: `/${rel}`, reason: `entry type ${String(h.type)} dropped` });
    }
    created.add(rel);
  });
  // Directory modes last, so a read-only directory does not stop its own children.
  for (const [rel, mode] of dirModes.reverse()) {
    const st = await exists(join(root, rel));
    if (st?.isDirectory() === true) await chmod(join(root, rel), mode | 0o700);
  }
  return entries;
}
