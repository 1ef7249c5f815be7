// "Is there something at this path?" for the places where absence is a normal answer (a
// cache not made yet, keys not generated yet), not an error.
import { access } from 'node:fs/promises';

/** True when `path` exists (following symlinks); false on any access error. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
