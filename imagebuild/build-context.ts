// What every step of `mway-image build` shares: the spec, the epoch, the seed every salt and
// UUID derives from, the work folder and the progress reporter. One value, passed to each
// artefact's builder (build-coreos.ts, build-boot.ts, build-trust.ts, …), so a step never
// recomputes the seed its own way and two steps cannot derive the same UUID by accident.
import { stat } from 'node:fs/promises';
import type { Progress } from '../common/index.ts';
import { deriveUuid } from '../formats/index.ts';
import type { ImageSpec } from './image-spec.ts';

export const MiB = 1 << 20;

export interface BuildContext {
  spec: ImageSpec;
  epoch: number;
  /** SOURCE_DATE_EPOCH as the time signatures carry. */
  now: Date;
  /** `milkyway-image/NAME/VERSION/EPOCH`: verity salts and UUIDs derive from it and a label. */
  seed: string;
  /** The build's temporary folder (removed when the build ends, whatever happens). */
  work: string;
  progress: Progress;
  /** A UUID stable across builds of the same spec and epoch, one per purpose. */
  uuid(purpose: string): string;
  /** Reports a finished file's size as the current step's byte count; returns it. */
  written(path: string): Promise<number>;
  /** Options for formatVerity that report hashing progress on the current step. */
  hashing: { onProgress: (done: number, total: number) => void };
}

export function buildContext(o: {
  spec: ImageSpec;
  epoch: number;
  work: string;
  progress: Progress;
}): BuildContext {
  const { spec, epoch, work, progress } = o;
  const seed = `milkyway-image/${spec.name}/${spec.version}/${epoch}`;
  return {
    spec,
    epoch,
    now: new Date(epoch * 1000),
    seed,
    work,
    progress,
    uuid: (purpose) => deriveUuid(seed, purpose, spec.name),
    async written(path) {
      const n = (await stat(path)).size;
      progress.bytes(n, n);
      return n;
    },
    hashing: { onProgress: (done, total) => progress.bytes(done, total) },
  };
}
