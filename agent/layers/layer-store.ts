// Layer storage: `<layersDir>/<name>.mwl`, written only by rename from `.staging/` after the
// copy is fsynced and verified, so a crash (or SIGKILL) at any point leaves either the old
// file or the new one, never a torn one. Leftovers in `.staging/` are deleted at boot.
import { constants } from 'node:fs';
import { copyFile, mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { openRegularFile } from '../../common/index.ts';

export const STAGING = '.staging';

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The installed layer files, by name. */
export async function listStored(layersDir: string): Promise<Map<string, string>> {
  await mkdir(layersDir, { recursive: true });
  const out = new Map<string, string>();
  for (const f of (await readdir(layersDir)).sort()) {
    if (f.endsWith('.mwl') && !f.startsWith('.')) out.set(f.slice(0, -4), join(layersDir, f));
  }
  return out;
}

/**
 * A private copy of `source` for the userspace-verity path: read through a handle opened after
 * checking the type (no FIFO, device, directory or symlink), written 0600 under the agent's
 * state directory, which nobody else writes. The copy is what gets verified and mounted, so a
 * write to the layers partition after the check cannot reach the running layer.
 */
export async function privateCopy(stateDir: string, name: string, source: string): Promise<string> {
  const dir = join(stateDir, 'layers', '.verified');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const dest = join(dir, `${name}.mwl`);
  const { fh, size } = await openRegularFile(source, {
    what: 'layer',
    followSymlinks: false,
    readCode: 'E_LAYER_READ',
  });
  try {
    // A plain read/write loop with one buffer sized to the file (at most 1 MiB): streams cost
    // ~1 ms a file in set-up, which a partition of a thousand junk *.mwl turns into seconds.
    const out = await open(dest, 'w', 0o600);
    try {
      const buf = Buffer.allocUnsafe(Math.max(1, Math.min(size, 1 << 20)));
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        for (let done = 0; done < bytesRead; )
          done += (await out.write(buf, done, bytesRead - done)).bytesWritten;
      }
    } finally {
      await out.close();
    }
  } catch (e) {
    await rm(dest, { force: true });
    throw e;
  } finally {
    await fh.close();
  }
  return dest;
}

/** Deletes half-written installs a crash left behind. */
export async function cleanStaging(layersDir: string): Promise<number> {
  const dir = join(layersDir, STAGING);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const left = await readdir(dir);
  for (const f of left) await rm(join(dir, f), { force: true, recursive: true });
  return left.length;
}

/** Copies `source` into staging and fsyncs it; returns the staged path. */
export async function stage(layersDir: string, source: string): Promise<string> {
  const dir = join(layersDir, STAGING);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const staged = join(dir, `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.mwl`);
  await copyFile(source, staged);
  const fh = await open(staged, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  return staged;
}

/** Moves a staged (verified) file to `<name>.mwl` and makes the rename durable. */
export async function commit(layersDir: string, staged: string, name: string): Promise<string> {
  const dest = join(layersDir, `${name}.mwl`);
  await rename(staged, dest);
  await fsyncDir(layersDir);
  return dest;
}

/** Removes `<name>.mwl` durably (rename into staging first, so a crash cannot leave half a delete). */
export async function unstore(layersDir: string, name: string): Promise<void> {
  const src = join(layersDir, `${name}.mwl`);
  const trash = join(layersDir, STAGING, `${name}.removed`);
  await rename(src, trash);
  await fsyncDir(layersDir);
  await rm(trash, { force: true });
}
