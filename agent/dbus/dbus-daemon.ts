// Starts a real dbus-daemon (Debian `dbus`) for a bus of our own: in tests, in namespace
// mode, and on a booted MilkyWayLinux where no systemd starts the system bus for us.
import { execa } from 'execa';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireTool } from '../../common/index.ts';
import { dbusError } from './dbus-bus.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
/** The agent's bus policy file, installed in images at /usr/share/dbus-1/system.d/. */
export const POLICY_FILE = join(HERE, 'org.milkyway.Agent1.conf');
const TEMPLATE = join(HERE, 'system-bus.conf.in');

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * Writes a system-bus configuration to `configFile` that listens on the unix socket
 * `socketPath` and includes `policies` (default: the agent's policy file). Returns the
 * bus address clients use.
 */
export async function writeBusConfig(options: {
  configFile: string;
  socketPath: string;
  policies?: readonly string[];
}): Promise<string> {
  const template = await readFile(TEMPLATE, 'utf8');
  const includes = (options.policies ?? [POLICY_FILE])
    .map((p) => `  <include>${xmlEscape(p)}</include>`)
    .join('\n');
  const listen = `unix:path=${options.socketPath}`;
  const text = template.replace('@LISTEN@', xmlEscape(listen)).replace('@INCLUDES@', includes);
  const tmp = `${options.configFile}.tmp-${process.pid}`;
  await writeFile(tmp, text, { mode: 0o644 });
  await rename(tmp, options.configFile);
  return listen;
}

export interface BusDaemon {
  /** The address the daemon printed (`unix:path=…,guid=…`). */
  readonly address: string;
  readonly pid: number;
  /** Resolves when the daemon exits (for whatever reason). */
  readonly exited: Promise<void>;
  /** SIGTERM, then SIGKILL after 3 s. */
  stop(): Promise<void>;
}

/**
 * Runs `dbus-daemon --config-file=FILE --nofork --print-address` (or, without a config
 * file, the distribution's system bus: `--system`, for PID 1 on a booted MilkyWayLinux
 * where nothing else starts it) and waits for the address it prints. The daemon stays a
 * child of ours: stop() ends it.
 */
export async function startBusDaemon(options: {
  configFile?: string;
  timeoutMs?: number;
}): Promise<BusDaemon> {
  const file = await requireTool('dbus-daemon');
  const timeoutMs = options.timeoutMs ?? 10_000;
  const config = options.configFile === undefined ? '--system' : `--config-file=${options.configFile}`;
  // The system bus's socket lives in /run/dbus, which a fresh tmpfs /run does not have.
  if (options.configFile === undefined) await mkdir('/run/dbus', { recursive: true, mode: 0o755 });
  // A daemon has no timeout of its own; stop() ends it (execa's kill escalates to SIGKILL).
  const child = execa(file, [config, '--nofork', '--nopidfile', '--print-address'], {
    reject: false,
    forceKillAfterDelay: 3_000,
    stdin: 'ignore',
    buffer: false,
  });
  const exited = child.then(
    () => undefined,
    () => undefined,
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString();
  });
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill();
      reject(dbusError('E_DBUS_DAEMON', `dbus-daemon printed no address within ${timeoutMs} ms`));
    }, timeoutMs);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl).trim());
      }
    });
    exited.then(() => {
      clearTimeout(timer);
      reject(
        dbusError(
          'E_DBUS_DAEMON',
          `dbus-daemon exited before it was ready: ${stderr.trim().split('\n').slice(-2).join(' | ')}`,
          { path: options.configFile ?? 'system bus' },
        ),
      );
    });
  });
  // Non-root callers (tests switch uid) must reach the socket.
  const path = /unix:path=([^,]+)/.exec(address)?.[1];
  if (path !== undefined) await chmod(path, 0o666).catch(() => undefined);
  return {
    address,
    pid: child.pid ?? 0,
    exited,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
