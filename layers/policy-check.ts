// Pack-time check of a layer's SELinux CIL module: secilc compiles it together with
// layers/selinux-base.cil (the vocabulary and neverallow rules every MilkyWay module is held
// to; doc/layer-format.md, "SELinux policy") into a throw-away MLS policy. A module that does
// not compile, or that breaks a neverallow rule, never reaches a signature.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMilkyWayError, requireTool, run } from '../common/index.ts';
import { LayerError } from './layer-error.ts';

/** The base policy modules are compiled against. */
export const POLICY_BASE = fileURLToPath(new URL('./selinux-base.cil', import.meta.url));

/** The attribute holding the platform's types; a module naming it could join it. */
const PLATFORM_ATTRIBUTE = 'milkyway_platform_type';

/**
 * Line (1-based) of the first reference to the platform attribute outside comments and
 * strings, or undefined. CIL has no way to build an identifier from parts, so a reference
 * is always this token, possibly namespaced (`.milkyway_platform_type`, `b.milkyway_…`).
 */
export function platformAttributeLine(text: string): number | undefined {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const code = (lines[i] as string).replace(/"[^"]*"/g, '""').replace(/;.*$/, '');
    for (const token of code.split(/[\s()]+/)) {
      if (token.split('.').includes(PLATFORM_ATTRIBUTE)) return i + 1;
    }
  }
  return undefined;
}

/** First line number secilc gives for `name` (`name:12` or `line 12 of name`). */
function lineIn(output: string, name: string): number | undefined {
  const esc = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`(?:${esc}:(\\d+))|(?:line (\\d+) of ${esc})`).exec(output);
  const n = m?.[1] ?? m?.[2];
  return n === undefined ? undefined : Number(n);
}

/**
 * Throws E_POLICY_INVALID (naming `source`, the line and secilc's message) when `bytes` do
 * not compile against the base policy, E_POLICY_CHECKER_MISSING when secilc is not installed.
 */
export async function checkPolicy(bytes: Uint8Array, source: string): Promise<void> {
  const text = Buffer.from(bytes).toString('utf8');
  const named = platformAttributeLine(text);
  if (named !== undefined) {
    throw new LayerError(
      'E_POLICY_INVALID',
      `${source}:${named}: a layer's policy may not name ${PLATFORM_ATTRIBUTE} (the platform's own types)`,
      { path: source, details: { line: named } },
    );
  }
  let secilc: string;
  try {
    secilc = await requireTool('secilc');
  } catch (e) {
    if (isMilkyWayError(e) && e.code === 'E_TOOL_MISSING')
      throw new LayerError(
        'E_POLICY_CHECKER_MISSING',
        `Cannot check ${source}: secilc is not installed (install the Debian package secilc: apt-get install secilc)`,
        { path: source, cause: e, details: { debianPackage: 'secilc' } },
      );
    throw e;
  }
  // In a directory of its own, under the member's name, so secilc's messages say policy.cil.
  const dir = await mkdtemp(join(tmpdir(), 'mway-policy-'));
  try {
    await writeFile(join(dir, 'policy.cil'), bytes);
    const r = await run(
      secilc,
      ['--mls=true', '-o', 'policy.bin', '-f', 'file_contexts', POLICY_BASE, 'policy.cil'],
      { cwd: dir, timeout: 60_000, reject: false },
    );
    if (r.exitCode !== 0) {
      const said = `${r.stderr}\n${r.stdout}`.trim();
      const line = lineIn(said, 'policy.cil');
      const summary = said
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '')
        .slice(0, 6)
        .join(' | ');
      throw new LayerError(
        'E_POLICY_INVALID',
        `${source}${line === undefined ? '' : `:${line}`}: does not compile with secilc against the MilkyWay base policy: ${summary}`,
        { path: source, details: { ...(line === undefined ? {} : { line }), secilc: said.slice(0, 4000) } },
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
