// Whole-file replacement that survives a crash or a power cut: the bytes go to a temporary
// file in the same directory, are fsynced, get their final mode, and are renamed over the
// target; the directory is fsynced so the rename itself is durable. A reader sees the old
// file or the new one, never half of one, and a failure leaves no temporary file behind.
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Writes `data` to `path` atomically with exactly `mode` (the umask does not apply). */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    try {
      await fh.writeFile(data);
      await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await syncDirectory(dir);
}

/** fsync of a directory, so a rename or create in it reaches the disk. */
export async function syncDirectory(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } catch {
    // Some filesystems (tmpfs, 9p) refuse fsync on a directory; nothing more can be done there.
  } finally {
    await d.close();
  }
}

/** Writes `value` as one line of JSON with writeFileAtomic (small state files). */
export async function writeJsonAtomic(path: string, value: unknown, mode = 0o600): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value)}\n`, mode);
}
