// The five binaries' root commands, for the generated man pages and completions.
import type { AnyCommand } from '../common/index.ts';

export const MAN_ROOTS = ['mway', 'mway-image', 'mway-layer', 'milkywaysrvd', 'milkyway-agent'] as const;

export async function manRoots(): Promise<Record<(typeof MAN_ROOTS)[number], AnyCommand>> {
  return {
    mway: (await import('../control/operator/bin/mway.ts')).command,
    'mway-image': (await import('../imagebuild/bin/mway-image.ts')).command,
    'mway-layer': (await import('../layers/bin/mway-layer.ts')).command,
    milkywaysrvd: (await import('../control/broker/bin/milkywaysrvd.ts')).command,
    'milkyway-agent': (await import('../agent/bin/milkyway-agent.ts')).command,
  };
}
