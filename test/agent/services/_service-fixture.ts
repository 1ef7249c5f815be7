// Service specs and a supervisor on the host's own root, for the supervisor and sandbox
// tests (no layers needed: the sandbox root is the host's `/`, read-only).
import type { ExecutionContext } from 'ava';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentChange } from '../../../agent/core/agent-api.ts';
import { isCgroup2, prepareCgroupRoot } from '../../../agent/services/cgroup.ts';
import { parseAgentConfig } from '../../../agent/core/agent-config.ts';
import type { UnitSpec } from '../../../agent/services/unit-spec.ts';
import { parseService } from '../../../layers/index.ts';
import { Supervisor } from '../../../agent/services/supervisor.ts';
import { tempDir } from '../../helpers.ts';

export const CGROUP_PARENT = '/sys/fs/cgroup/unified';

/** What a test sets: manifest fields (defaults from the manifest's schema) and host fields. */
export type SpecInput = Partial<Record<keyof UnitSpec, unknown>>;

const HOST = [
  'uid',
  'gid',
  'root',
  'binds',
  'layer',
  'selinuxLabel',
  'selinuxFileLabel',
  'persistentRoot',
] as const;

/**
 * A unit running `script` with /bin/sh, as root, on the host's `/`: the service fields go
 * through the manifest's own parser (layers/service.ts), so the defaults are the manifest's.
 */
export function spec(name: string, script: string, extra: SpecInput = {}): UnitSpec {
  const service: Record<string, unknown> = { execStart: ['/bin/sh', '-c', script] };
  const host: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(extra))
    ((HOST as readonly string[]).includes(k) ? host : service)[k] = v;
  const [layer, own] = name.includes('/') ? (name.split('/') as [string, string]) : [name, name];
  const parsed = parseService({ ...service, name: own });
  return {
    ...parsed,
    // As placement.ts does: the agent config's default when the manifest gives none.
    timeoutStopSec: parsed.timeoutStopSec ?? parseAgentConfig({}).stopTimeoutMs / 1000,
    name,
    layer,
    uid: 0,
    gid: 0,
    root: '/',
    binds: [],
    ...host,
  } as UnitSpec;
}

export interface Fixture {
  sup: Supervisor;
  changes: AgentChange[];
  dir: string;
  cgroupRoot: string | undefined;
}

let seq = 0;

export async function fixture(
  t: ExecutionContext,
  logs: Partial<{ ringLines: number; fileBytes: number; files: number; rateLinesPerSecond: number }> = {},
): Promise<Fixture> {
  const dir = await tempDir(t, 'mway-agent-');
  const changes: AgentChange[] = [];
  let cgroupRoot: string | undefined;
  if (isCgroup2(CGROUP_PARENT)) {
    cgroupRoot = join(CGROUP_PARENT, `mway-test-${process.pid}-${seq++}`);
    await prepareCgroupRoot(cgroupRoot);
  }
  await mkdir(join(dir, 'logs'));
  const sup = new Supervisor({
    cgroupRoot,
    runDir: join(dir, 'run'),
    logDir: join(dir, 'logs'),
    logConfig: { ringLines: 200, fileBytes: 1 << 20, files: 2, rateLinesPerSecond: 10_000, ...logs },
    emit: (c) => changes.push(c),
    log: () => {},
  });
  t.teardown(async () => {
    await sup.stopAll();
    if (cgroupRoot !== undefined) {
      const { rmdir } = await import('node:fs/promises');
      await rmdir(cgroupRoot).catch(() => {});
    }
  });
  return { sup, changes, dir, cgroupRoot };
}

export async function until(cond: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

export function logText(f: Fixture, name: string): string {
  return f.sup
    .get(name)
    .ctx.log.tail(1000)
    .map((l) => `${l.stream} ${l.text}`)
    .join('\n');
}
