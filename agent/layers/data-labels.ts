// SELinux labels on the data partition (ext4, labels in security.selinux xattrs): the agent
// labels each folder it makes as it makes it, through /proc/thread-self/attr/fscreate (the
// kernel labels the next files this thread creates; libselinux's setfscreatecon), and folders
// that already exist — a first boot with SELinux on, an image built without labels — with
// coreutils chcon once, remembering what it set in data/selinux-labels.json so a later boot
// spawns nothing. Node runs synchronous fs calls on the main thread, so the mkdir that follows
// the fscreate write is the thread that wrote it; asynchronous ones run on libuv's pool and
// would not see it.
import { chmodSync, chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, stateVersionOf, writeFileAtomic } from '../../common/index.ts';
import { AgentError } from '../core/agent-error.ts';

const FSCREATE = '/proc/thread-self/attr/fscreate';
export const LABELS_VERSION = 1;

/** Creates `path` (one level) labelled `context`, then owner and mode; true when it made it. */
export function mkdirLabelled(
  path: string,
  context: string,
  mode: number,
  uid: number,
  gid: number,
): boolean {
  if (existsSync(path)) return false;
  writeFileSync(FSCREATE, context);
  try {
    mkdirSync(path, { mode });
  } finally {
    // "\n" resets it: an empty string is no write at all, and the label would stick to every
    // file this thread makes afterwards (a service's log, the agent's state files).
    writeFileSync(FSCREATE, '\n');
  }
  chownSync(path, uid, gid);
  chmodSync(path, mode);
  return true;
}

/** What the agent last set on each folder (paths relative to the data partition). */
export class DataLabels {
  readonly #path: string;
  readonly #labels: Record<string, string>;

  private constructor(path: string, labels: Record<string, string>) {
    this.#path = path;
    this.#labels = labels;
  }

  static async open(dataDir: string): Promise<DataLabels> {
    const path = join(dataDir, 'selinux-labels.json');
    let text: string | undefined;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new AgentError('E_STATE_CORRUPT', `Cannot read ${path}: ${(e as Error).message}`, { path });
    }
    if (text === undefined) return new DataLabels(path, {});
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      // A damaged record only costs a relabel: forget it.
      return new DataLabels(path, {});
    }
    stateVersionOf(raw, {
      what: 'SELinux label record',
      path,
      current: LABELS_VERSION,
      isLegacy: () => false,
      error: (code, message, options) => new AgentError(code, message, options),
    });
    const labels = (raw as { labels?: unknown }).labels;
    const out: Record<string, string> = {};
    if (typeof labels === 'object' && labels !== null && !Array.isArray(labels)) {
      for (const [k, v] of Object.entries(labels)) if (typeof v === 'string') out[k] = v;
    }
    return new DataLabels(path, out);
  }

  /**
   * Makes `rel` (under `dataDir`) labelled `context`: created with it, or relabelled when it
   * exists with a label the record does not show (`recursive`: its whole tree).
   */
  async ensure(
    dataDir: string,
    rel: string,
    context: string,
    o: { mode: number; uid: number; gid: number; recursive: boolean },
  ): Promise<void> {
    const path = join(dataDir, rel);
    if (mkdirLabelled(path, context, o.mode, o.uid, o.gid)) {
      await this.#record(rel, context);
      return;
    }
    chownSync(path, o.uid, o.gid);
    chmodSync(path, o.mode);
    if (this.#labels[rel] === context) return;
    await this.#chcon(path, context, o.recursive);
    await this.#record(rel, context);
  }

  /** Relabels `rel` when it exists and the record does not show `context` (files, the root). */
  async ensureExisting(
    dataDir: string,
    rel: string,
    context: string,
    o: { recursive: boolean },
  ): Promise<void> {
    const path = join(dataDir, rel);
    if (!existsSync(path) || this.#labels[rel] === context) return;
    await this.#chcon(path, context, o.recursive);
    await this.#record(rel, context);
  }

  async #chcon(path: string, context: string, recursive: boolean): Promise<void> {
    const r = await run('chcon', [...(recursive ? ['-R'] : []), '-h', '--', context, path], {
      timeout: 300_000,
      reject: false,
    });
    if (r.exitCode !== 0) {
      throw new AgentError(
        'E_SELINUX_LABEL',
        `Cannot label ${path} ${context}: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`,
        { path },
      );
    }
  }

  // One write at a time, each of the whole record: concurrent labels never lose one another.
  #writing: Promise<void> = Promise.resolve();

  #record(rel: string, context: string): Promise<void> {
    this.#labels[rel] = context;
    const write = async () =>
      writeFileAtomic(
        this.#path,
        `${JSON.stringify({ version: LABELS_VERSION, labels: this.#labels }, null, 2)}\n`,
        0o600,
      );
    this.#writing = this.#writing.then(write, write);
    return this.#writing;
  }
}
