// Dependency resolution over installed layers (used by the agent): the dependency closure
// of an app (highest version satisfying every range on it), the overlay stack order and
// the service start order. Pure and bounded: no I/O, at most 64 re-picks.
import semver from 'semver';
import { LayerError } from './layer-error.ts';
import type { LayerManifest } from './manifest.ts';

export interface Resolution {
  /** Layer names of the closure, the app first, then dependencies breadth-first. */
  closure: string[];
  /** The chosen manifest per name (the version picked). */
  layers: LayerManifest[];
  /** Overlay lower layers bottom to top: dependencies before dependants, the app last. */
  overlayOrder: string[];
  /** `layer/service`, each after everything its `after` names. */
  serviceOrder: string[];
}

function pickHighest(cands: LayerManifest[]): LayerManifest | undefined {
  return [...cands].sort((a, b) => semver.rcompare(a.version, b.version))[0];
}

export function resolve(installed: readonly LayerManifest[], app: string): Resolution {
  const byName = new Map<string, LayerManifest[]>();
  for (const m of installed) byName.set(m.name, [...(byName.get(m.name) ?? []), m]);
  const root = pickHighest(byName.get(app) ?? []);
  if (root === undefined)
    throw new LayerError('E_DEP_MISSING', `No installed layer named ${app}`, { details: { layer: app } });
  // Ranges seen per name, with who asked; re-walk whenever a pick changes.
  const ranges = new Map<string, { range: string; from: string }[]>();
  for (let round = 0; round < 64; round++) {
    const picks = new Map<string, LayerManifest>([[root.name, root]]);
    const order: string[] = [root.name];
    let changed = false;
    for (let i = 0; i < order.length && !changed; i++) {
      const m = picks.get(order[i] as string) as LayerManifest;
      for (const d of m.dependencies) {
        const rs = ranges.get(d.name) ?? [];
        if (!rs.some((r) => r.range === d.range && r.from === m.name)) {
          rs.push({ range: d.range, from: m.name });
          ranges.set(d.name, rs);
          changed =
            picks.has(d.name) && !semver.satisfies((picks.get(d.name) as LayerManifest).version, d.range);
        }
        if (changed) break;
        if (picks.has(d.name)) continue;
        const all = byName.get(d.name) ?? [];
        if (all.length === 0) {
          throw new LayerError(
            'E_DEP_MISSING',
            `${m.name} needs ${d.name} ${d.range}, which is not installed`,
            { details: { layer: m.name, dependency: d.name, range: d.range } },
          );
        }
        const ok = all.filter((c) => rs.every((r) => semver.satisfies(c.version, r.range)));
        const pick = pickHighest(ok);
        if (pick === undefined) {
          throw new LayerError(
            'E_DEP_CONFLICT',
            `No installed version of ${d.name} (${all.map((c) => c.version).join(', ')}) satisfies ${rs.map((r) => `${r.range} (from ${r.from})`).join(' and ')}`,
            { details: { dependency: d.name, ranges: rs } },
          );
        }
        if (pick.kind === 'app') {
          throw new LayerError(
            'E_DEP_KIND',
            `${m.name} depends on ${d.name}, which is an app layer (dependencies are library or module layers)`,
            { details: { layer: m.name, dependency: d.name } },
          );
        }
        picks.set(d.name, pick);
        order.push(d.name);
      }
    }
    if (changed) continue;
    const layers = order.map((n) => picks.get(n) as LayerManifest);
    checkProvides(layers);
    return { closure: order, layers, overlayOrder: topo(layers), serviceOrder: serviceOrder(layers) };
  }
  throw new LayerError('E_DEP_CONFLICT', `Dependency resolution for ${app} did not settle`);
}

function checkProvides(layers: LayerManifest[]): void {
  const by = new Map<string, string>();
  for (const l of layers) {
    for (const p of l.provides) {
      const other = by.get(p);
      if (other !== undefined) {
        throw new LayerError('E_DEP_PROVIDES_CONFLICT', `${other} and ${l.name} both provide ${p}`, {
          details: { provides: p, layers: [other, l.name] },
        });
      }
      by.set(p, l.name);
    }
  }
}

/** Dependencies first (depth-first post-order); a cycle is an error naming it. */
function topo(layers: LayerManifest[]): string[] {
  const by = new Map(layers.map((l) => [l.name, l]));
  const out: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (name: string, stack: string[]): void => {
    const s = state.get(name);
    if (s === 'done') return;
    if (s === 'open') {
      const cycle = [...stack.slice(stack.indexOf(name)), name];
      throw new LayerError('E_DEP_CYCLE', `Layer dependency cycle: ${cycle.join(' → ')}`, {
        details: { cycle },
      });
    }
    state.set(name, 'open');
    for (const d of (by.get(name) as LayerManifest).dependencies) visit(d.name, [...stack, name]);
    state.set(name, 'done');
    out.push(name);
  };
  for (const l of [...layers].reverse()) visit(l.name, []);
  // Put the app (first in closure) last even if unrelated layers sorted after it.
  return out;
}

function serviceOrder(layers: LayerManifest[]): string[] {
  const all = new Map<string, string[]>();
  const refs: [from: string, to: string][] = [];
  const inClosure = new Set(layers.map((l) => l.name));
  for (const l of layers) {
    const q = (a: string) => (a.includes('/') ? a : `${l.name}/${a}`);
    // A layer of a layer group (a compose project) may name the services of the group's other
    // apps, which are in no closure: the supervisor orders and requires them when they run.
    const here = (ref: string) => l.groups.length === 0 || inClosure.has(ref.slice(0, ref.indexOf('/')));
    for (const s of l.services) {
      const id = `${l.name}/${s.name}`;
      all.set(id, s.after.map(q).filter(here));
      for (const r of [...s.requires, ...s.wants].map(q).filter(here)) refs.push([id, r]);
    }
  }
  // What requires and wants name must exist too; only after orders (and can close a cycle).
  for (const [from, to] of refs) {
    if (!all.has(to))
      throw new LayerError(
        'E_SERVICE_UNKNOWN',
        `${from} requires ${to}, which no layer in the closure defines`,
        {
          details: { service: to },
        },
      );
  }
  const out: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (id: string, stack: string[]): void => {
    const s = state.get(id);
    if (s === 'done') return;
    if (s === 'open') {
      const cycle = [...stack.slice(stack.indexOf(id)), id];
      throw new LayerError('E_SERVICE_CYCLE', `Service start cycle: ${cycle.join(' → ')}`, {
        details: { cycle },
      });
    }
    const after = all.get(id);
    if (after === undefined) {
      throw new LayerError(
        'E_SERVICE_UNKNOWN',
        `${stack[stack.length - 1]} starts after ${id}, which no layer in the closure defines`,
        { details: { service: id } },
      );
    }
    state.set(id, 'open');
    for (const a of after) visit(a, [...stack, id]);
    state.set(id, 'done');
    out.push(id);
  };
  for (const id of all.keys()) visit(id, []);
  return out;
}
