// Small JSON state files of the peer link (replay cache, memberships, sequence numbers):
// written to a temporary file and renamed, so a crash leaves the old or the new file, never half.
import { writeFileAtomic } from '../../common/atomic-file.ts';

export { writeFileAtomic };

export async function writeJsonAtomic(path: string, value: unknown, mode = 0o600): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value)}\n`, mode);
}
