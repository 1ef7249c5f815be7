// A manifest service placed on this host: the stop timeout is the manifest's, or the agent
// config's stopTimeoutMs when the manifest gives none (systemd's DefaultTimeoutStopSec=).
import test from 'ava';
import { parseAgentConfig } from '../../../agent/core/agent-config.ts';
import { unitSpec } from '../../../agent/services/placement.ts';
import { validateManifest } from '../../../layers/index.ts';

test("a service without timeoutStopSec gets the agent config's stopTimeoutMs; one with it keeps its own", (t) => {
  const m = validateManifest(
    {
      name: 'app',
      version: '1.0.0',
      kind: 'app',
      services: [
        { name: 'plain', execStart: ['/bin/a'] },
        { name: 'own', execStart: ['/bin/b'], timeoutStopSec: 2.5 },
      ],
    },
    { source: true },
  );
  t.is(m.services[0]?.timeoutStopSec, undefined, 'the manifest keeps that it gave none');
  const config = parseAgentConfig({ stopTimeoutMs: 1500 });
  const at = {
    root: '/r',
    binds: [],
    uid: 61184,
    gid: 61184,
    defaultStopSec: config.stopTimeoutMs / 1000,
    groupGids: {},
  };
  const specs = m.services.map((s) => unitSpec(m.name, s, at));
  t.deepEqual(
    specs.map((s) => [s.name, s.timeoutStopSec]),
    [
      ['app/plain', 1.5],
      ['app/own', 2.5],
    ],
  );
  t.is(parseAgentConfig({}).stopTimeoutMs, 10_000, 'the documented default');
});

test("a layer's services hold exactly its data groups' gids as supplementary groups (setpriv --groups)", async (t) => {
  const { setprivArgs } = await import('../../../agent/services/sandbox.ts');
  const m = validateManifest(
    { name: 'web', version: '1.0.0', kind: 'app', services: [{ name: 'main', execStart: ['/bin/a'] }] },
    { source: true },
  );
  const at = { root: '/r', binds: [], uid: 61184, gid: 61184, defaultStopSec: 10 };
  const [spec] = m.services.map((s) =>
    unitSpec(m.name, s, { ...at, groupGids: { shop: 5001, cache: 5000 } }),
  );
  t.deepEqual(spec?.supplementaryGids, [5000, 5001]);
  t.true(setprivArgs(61184, 61184, [], undefined, spec?.supplementaryGids).includes('--groups=5000,5001'));
  // No groups: the agent's own supplementary groups are cleared, never inherited.
  const none = setprivArgs(61184, 61184, [], undefined, []);
  t.true(none.includes('--clear-groups'));
  t.false(none.some((a) => a.startsWith('--groups')));
});
