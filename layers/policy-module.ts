// What a layer's own SELinux module (policy.cil) may say, checked before secilc compiles it
// (doc/selinux.md, "A layer's module"): it adds rules about its own types only. Its statements
// go into the layer's CIL block, so a type it declares is the layer's own (`mway_web.cache_t`);
// it may name the layer's four types (`mway_web_t` …), the platform's types and attributes, and
// nothing of another layer or group. Every rule must have one of its own types as source or
// target; the kinds of statement that change the policy's frame (users, roles, classes, SIDs,
// labelling, booleans, permissive domains, macros, blocks) are not allowed at all. What the
// rules then grant is bounded by constraints.cil's neverallow rules, which secilc checks.
import { type CilList, type CilNode, CilSyntaxError, parseCil, symbolsOf } from './cil-syntax.ts';
import { LayerError } from './layer-error.ts';
import { cilStem, layerTypes } from './selinux-names.ts';

/** The attribute holding the platform's types; a module naming it could join it. */
export const PLATFORM_ATTRIBUTE = 'milkyway_platform_type';

/** Platform attributes a module may put its own types into. */
const JOINABLE = new Set(['milkyway_mcs_shared']);

const DECLARATIONS = new Set(['type', 'typeattribute', 'typealias']);
const RULES = new Set([
  'allow',
  'auditallow',
  'dontaudit',
  'allowx',
  'auditallowx',
  'dontauditx',
  'typetransition',
  'typechange',
  'typemember',
]);
const RESTRICTIONS = new Set(['neverallow', 'neverallowx']);
const OTHER_ALLOWED = new Set(['typeattributeset', 'typealiasactual', 'roletype', 'portcon']);

/** Keywords and names that are not type names, wherever they appear. */
const NOT_TYPES = new Set([
  'self',
  'all',
  'and',
  'or',
  'not',
  'xor',
  'range',
  'ioctl',
  'system_r',
  'system_u',
  'object_r',
  'tcp',
  'udp',
  'sctp',
  'dccp',
]);

function fail(source: string, line: number, why: string): never {
  throw new LayerError('E_POLICY_INVALID', `${source}:${line}: ${why}`, {
    path: source,
    details: { line },
  });
}

function head(s: CilList): string | undefined {
  const h = s.items[0];
  return h?.kind === 'symbol' ? h.text : undefined;
}

function names(node: CilNode | undefined): string[] {
  return node === undefined ? [] : symbolsOf(node).map((a) => a.text);
}

/**
 * Throws E_POLICY_INVALID (naming `source` and the line) unless `text` is a module layer
 * `layer` may ship. `text` is the module as the packager wrote it.
 */
export function checkModule(text: string, layer: string, source: string): void {
  let statements: CilList[];
  try {
    statements = parseCil(text);
  } catch (e) {
    if (e instanceof CilSyntaxError) fail(source, e.line, `is not CIL: ${e.message}`);
    throw e;
  }
  const t = layerTypes(layer);
  const stem = cilStem(layer);
  const own = new Set([t.domain, t.files, t.data, t.secret, t.root]);
  // Names it declares (inside its block) are its own too; collect them first.
  for (const s of statements) {
    const kw = head(s);
    const name = s.items[1];
    if (kw !== undefined && DECLARATIONS.has(kw) && name?.kind === 'symbol') own.add(name.text);
  }
  for (const s of statements) {
    const kw = head(s);
    if (kw === undefined) fail(source, s.line, 'a statement must start with a keyword');
    for (const a of symbolsOf(s).slice(1)) {
      const n = a.text;
      if (n === PLATFORM_ATTRIBUTE || n.split('.').includes(PLATFORM_ATTRIBUTE))
        fail(
          source,
          a.line,
          `a layer's policy may not name ${PLATFORM_ATTRIBUTE} (the platform's own types)`,
        );
      if (n.includes('.'))
        fail(
          source,
          a.line,
          `${n}: a layer's policy names only its own and the platform's types, never another namespace`,
        );
      if ((n.startsWith('mway_') || n.startsWith('mwgroup_')) && !own.has(n) && n !== t.block)
        fail(
          source,
          a.line,
          `${n}: names another layer's or a group's type (layer ${layer} owns mway_${stem}_t, mway_${stem}_file_t, mway_${stem}_data_t, mway_${stem}_secret_t, mway_${stem}_root_t and what it declares)`,
        );
    }
    if (DECLARATIONS.has(kw) || RESTRICTIONS.has(kw)) continue;
    if (RULES.has(kw)) {
      const [, src, tgt] = s.items;
      const mentioned = [...names(src), ...names(tgt)];
      if (!mentioned.some((n) => own.has(n)))
        fail(
          source,
          s.line,
          `${kw}: a layer's rule must have one of its own types as source or target (${[...own].join(', ')})`,
        );
      continue;
    }
    if (!OTHER_ALLOWED.has(kw))
      fail(
        source,
        s.line,
        `${kw}: not allowed in a layer's policy (only type declarations, rules about its own types, roletype, portcon)`,
      );
    if (kw === 'typeattributeset') {
      const attr = s.items[1];
      const members = names(s.items[2]).filter((n) => !NOT_TYPES.has(n));
      if (attr?.kind !== 'symbol' || !(own.has(attr.text) || JOINABLE.has(attr.text)))
        fail(
          source,
          s.line,
          `typeattributeset: a layer may only fill its own attributes (or ${[...JOINABLE].join(', ')})`,
        );
      if (!own.has(attr.text) && members.some((m) => !own.has(m)))
        fail(source, s.line, `typeattributeset ${attr.text}: only the layer's own types may join it`);
    } else if (kw === 'typealiasactual') {
      const actual = names(s.items[2]);
      if (actual.some((n) => !own.has(n)))
        fail(source, s.line, 'typealiasactual: an alias of its own types only');
    } else if (kw === 'roletype') {
      const [, role, type] = s.items;
      if (role?.kind !== 'symbol' || role.text !== 'system_r' || names(type).some((n) => !own.has(n)))
        fail(source, s.line, 'roletype: only system_r, for its own types');
    } else if (kw === 'portcon') {
      const ctx = names(s.items[3]);
      if (!ctx.some((n) => own.has(n)))
        fail(source, s.line, 'portcon: a port may only be labelled with its own type');
    }
  }
}

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
