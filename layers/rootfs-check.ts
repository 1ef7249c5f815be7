// What a layer's payload tree may hold: directories, regular files, symlinks that stay
// inside the tree. Device nodes, FIFOs and sockets are refused (a layer is software, and
// the agent mounts payloads nodev anyway); so is a symlink that climbs above the root, and
// so are setuid and setgid bits: mkfs.erofs --all-root would make every such file setuid
// *root*, and the agent mounts payloads nosuid, so the bit could only mislead (Bottlerocket
// and Flatcar's sysext images carry none either). `import-oci` strips them and reports it.
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { LayerError } from './layer-error.ts';

/** True when a symlink at `rel` (relative to the root) pointing at `target` stays inside. */
export function symlinkStaysInside(rel: string, target: string): boolean {
  if (target.startsWith('/')) return true; // resolved inside the layer's own root when mounted
  // Resolve lexically from the link's directory; path.join would clamp "/.." to "/" and hide it.
  let depth = rel.split('/').filter((p) => p !== '').length - 1;
  for (const part of target.split('/')) {
    if (part === '' || part === '.') continue;
    depth += part === '..' ? -1 : 1;
    if (depth < 0) return false;
  }
  return true;
}

export interface TreeStats {
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
}

/**
 * Walks `root` (never following links), depth first in name order with an explicit stack;
 * throws on the first unsafe entry. Synchronous calls on purpose: pack runs this while
 * mkfs.erofs reads the same tree, and one promise per entry cost ~15× the syscalls
 * themselves (40 ms against 3 ms for 1,600 entries).
 */
export function checkTreeSync(root: string): TreeStats {
  const stats: TreeStats = { files: 0, dirs: 0, symlinks: 0, bytes: 0 };
  const stack: string[] = [''];
  while (stack.length > 0) {
    const rel = stack.pop() as string;
    const abs = rel === '' ? root : join(root, rel);
    const st = lstatSync(abs);
    if ((st.mode & 0o6000) !== 0 && !st.isSymbolicLink()) {
      const bits = [(st.mode & 0o4000) !== 0 ? 'setuid' : '', (st.mode & 0o2000) !== 0 ? 'setgid' : '']
        .filter((b) => b !== '')
        .join(' and ');
      throw new LayerError(
        'E_TREE_SETUID',
        `${rel === '' ? '.' : rel} has the ${bits} bit (mode ${(st.mode & 0o7777).toString(8)}); layers are mounted nosuid: chmod u-s,g-s it`,
        { path: rel === '' ? '.' : rel },
      );
    }
    if (st.isDirectory()) {
      stats.dirs++;
      const names = readdirSync(abs).sort();
      for (let i = names.length - 1; i >= 0; i--)
        stack.push(rel === '' ? (names[i] as string) : `${rel}/${names[i]}`);
    } else if (st.isFile()) {
      stats.files++;
      stats.bytes += st.size;
    } else if (st.isSymbolicLink()) {
      stats.symlinks++;
      const target = readlinkSync(abs);
      if (!symlinkStaysInside(rel, target)) {
        throw new LayerError(
          'E_TREE_LINK_ESCAPE',
          `${rel} is a symlink to ${target}, which leaves the layer root`,
          { path: rel },
        );
      }
    } else {
      const kind = st.isCharacterDevice()
        ? 'character device'
        : st.isBlockDevice()
          ? 'block device'
          : st.isFIFO()
            ? 'FIFO'
            : 'socket';
      throw new LayerError(
        'E_TREE_SPECIAL_FILE',
        `${rel} is a ${kind}; layers hold only files, directories and symlinks`,
        { path: rel },
      );
    }
  }
  return stats;
}
