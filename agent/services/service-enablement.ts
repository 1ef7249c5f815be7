// Which services start on their own (`mway service enable|disable`, systemd's enable/disable):
// a disabled service is not started at boot nor when its layer is installed, but an explicit
// start still starts it, and a service pulled in as another's requirement still comes up.
// Kept on the data partition so it holds across reboots and layer updates:
// `<dataDir>/services/enablement.json`, `{"version": 1, "disabled": ["<layer>/<service>", …]}`.
// An unreadable file is refused (the agent says so and starts with every service enabled
// rather than guess which ones were off).
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { stateVersionOf, writeJsonAtomic } from '../../common/index.ts';
import { AgentError } from '../core/agent-error.ts';

export const ENABLEMENT_VERSION = 1;

export function enablementFile(dataDir: string): string {
  return join(dataDir, 'services', 'enablement.json');
}

export class ServiceEnablement {
  readonly #file: string;
  readonly #disabled: Set<string>;

  private constructor(file: string, disabled: Iterable<string>) {
    this.#file = file;
    this.#disabled = new Set(disabled);
  }

  /** Reads the file (none yet: every service enabled); E_STATE_* when it cannot be used. */
  static async open(file: string): Promise<ServiceEnablement> {
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(file, 'utf8'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new ServiceEnablement(file, []);
      throw new AgentError('E_STATE_CORRUPT', `Cannot read ${file}: ${(e as Error).message}`, {
        path: file,
        cause: e,
      });
    }
    stateVersionOf(raw, {
      what: 'service enablement',
      path: file,
      current: ENABLEMENT_VERSION,
      isLegacy: () => false,
      error: (code, message, options) => new AgentError(code, message, options),
    });
    const d = (raw as { disabled?: unknown }).disabled;
    if (!Array.isArray(d) || d.length > 100_000 || !d.every((x) => typeof x === 'string'))
      throw new AgentError('E_STATE_CORRUPT', `${file}: disabled is not a list of service names`, {
        path: file,
      });
    return new ServiceEnablement(file, d as string[]);
  }

  /** An empty set for an agent whose file could not be read (every service enabled). */
  static empty(file: string): ServiceEnablement {
    return new ServiceEnablement(file, []);
  }

  isEnabled(name: string): boolean {
    return !this.#disabled.has(name);
  }

  /** Enables or disables `name`; false when it already was (nothing written). */
  async set(name: string, enabled: boolean): Promise<boolean> {
    if (this.isEnabled(name) === enabled) return false;
    if (enabled) this.#disabled.delete(name);
    else this.#disabled.add(name);
    await mkdir(dirname(this.#file), { recursive: true, mode: 0o755 });
    await writeJsonAtomic(this.#file, { version: ENABLEMENT_VERSION, disabled: [...this.#disabled].sort() });
    return true;
  }
}
