// A CRL pushed with `mway crl push` reaches the agent's own checks, not only the commands: a
// real agent (namespace mode, its peer link to the real broker) refuses to install a layer
// signed by the revoked user key right after the push, and on its next boot refuses the layer
// of that signer it had installed before, while layers of other signers stay active. openssl
// (nobody here wrote it) reads the CRL the peer stored and finds the revoked serial in it.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { newIdentity } from '../../keys/index.ts';
import { makeFleetPki } from '../control/command-fixture.ts';
import { cli, jsonOut } from '../helpers.ts';
import { packTestLayer, startAgentPeer, startFleet } from './_fleet.ts';

const pkiP = makeFleetPki();

interface Installed {
  peers: Array<{ outcome: string; code?: string; output?: { name: string; state: string } }>;
}

test('after mway crl push the agent refuses layers signed by the revoked key, at install and at its next boot', async (t) => {
  const p = await pkiP;
  const f = await startFleet(t, p);
  const under = { issuerKey: p.root.key, issuerCert: p.root.cert };
  const good = await newIdentity({ ...under, role: 'user', name: 'good', outDir: join(f.dir, 'good') });
  const bad = await newIdentity({ ...under, role: 'user', name: 'bad', outDir: join(f.dir, 'bad') });
  const layer = (name: string, signer: typeof good) => packTestLayer(f.dir, name, signer);
  const a = await startAgentPeer(t, f, p, p.p1, good);
  const admin = await f.as(p.admin, 'admin', 120_000);
  const install = async (file: string) => {
    const res = await admin('install', '--peer', 'p1', file, '--json', '--static');
    return { exitCode: res.exitCode, peer: (jsonOut(res.stdout) as Installed).peers[0] };
  };

  // Before the revocation the bad key's layer installs like any other.
  const before = await install(await layer('old', bad));
  t.is(before.exitCode, 0);
  t.like(before.peer, { outcome: 'ok', output: { name: 'old', state: 'active' } });

  const crl = join(f.dir, 'root.crl');
  const R = ['--issuer-key', p.root.keyPath, '--issuer-cert', p.root.certPath, '--crl', crl];
  t.is((await cli('mway', ['keys', 'crl', ...R])).exitCode, 0);
  const rev = await cli('mway', ['keys', 'revoke', ...R, '--cert', bad.certPath]);
  t.is(rev.exitCode, 0, rev.stderr);
  const push = await admin('crl', 'push', crl, '--peer', 'p1', '--json', '--static');
  t.is(push.exitCode, 0, push.stdout + push.stderr);

  // At once: a new layer of the revoked signer is refused, one of another signer is not.
  const after = await install(await layer('fresh', bad));
  t.is(after.exitCode, 1);
  t.like(after.peer, { outcome: 'failed', code: 'E_CERT_REVOKED' });
  const kept = await install(await layer('kept', good));
  t.is(kept.exitCode, 0);
  t.like(kept.peer, { outcome: 'ok', output: { name: 'kept', state: 'active' } });

  // The pushed CRL is on the data partition; openssl reads the revoked serial from it.
  const dir = join(a.root, 'data', 'control', 'crls');
  const stored = (await readdir(dir)).filter((n) => n.endsWith('.crl'));
  t.is(stored.length, 1);
  const serial = (
    await execa('openssl', ['x509', '-in', bad.certPath, '-noout', '-serial'], { timeout: 10_000 })
  ).stdout
    .replace(/^serial=/, '')
    .trim();
  const text = (
    await execa('openssl', ['crl', '-in', join(dir, stored[0] as string), '-noout', '-text'], {
      timeout: 10_000,
    })
  ).stdout;
  t.regex(text.replace(/:/g, ''), new RegExp(`Serial Number ${serial}`, 'i'));

  // Next boot: the layer installed before the revocation is refused, the other one is active.
  await a.restart(/layer old refused: E_CERT_REVOKED/);
  const st = await admin('status', '--peer', 'p1', '--json', '--static');
  t.is(st.exitCode, 0, st.stderr);
  const out = (
    jsonOut(st.stdout) as {
      peers: Array<{
        output: {
          agent: { crls: { pushed?: number } };
          layers: Array<{ name: string; state: string; error?: { code: string } }>;
        };
      }>;
    }
  ).peers[0]?.output;
  t.deepEqual(out?.layers.map((l) => [l.name, l.state, l.error?.code]).sort(), [
    ['kept', 'active', undefined],
    ['old', 'refused', 'E_CERT_REVOKED'],
  ]);
  t.is(out?.agent.crls.pushed, 1);
});
