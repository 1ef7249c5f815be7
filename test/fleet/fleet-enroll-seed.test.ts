// cloud-init provisioning in namespace mode: the real agent, whose config names no broker and
// no token (only `enroll.dir` and `nocloud.device`), reads both from a NoCloud seed made by
// genisoimage (as cloud-init's docs make one), enrolls through the broker the seed names with
// the token it carries, is accepted by `mway peers autosign` and answers a signed command. A
// seed whose user-data is a script is refused whole: that agent asks no broker at all.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { makeRoot, startAgent } from '../agent/_namespace.ts';
import { newIdentity } from '../../keys/index.ts';
import { type FleetPki, makeFleetPki } from '../control/command-fixture.ts';
import { until } from '../helpers.ts';
import { startFleet } from './_fleet.ts';

const pkiP = makeFleetPki();

/** The agent root's PKI: the fleet's user root, and a user under it signing the secure config. */
async function rootPki(p: FleetPki, dir: string) {
  const under = { issuerKey: p.root.key, issuerCert: p.root.cert };
  const user = await newIdentity({ ...under, role: 'user', name: 'user', outDir: join(dir, 'user') });
  return { dir, rootCert: p.root.certPath, userKeyPath: user.keyPath, userCertPath: user.certPath };
}

async function seedIso(dir: string, userData: string): Promise<string> {
  const src = join(dir, 'seed-src');
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'meta-data'), 'instance-id: iid-seed-1\nlocal-hostname: seeded\n');
  await writeFile(join(src, 'user-data'), userData);
  const out = join(dir, 'seed.iso');
  await execa(
    'genisoimage',
    ['-quiet', '-output', out, '-volid', 'cidata', '-joliet', '-rock', 'user-data', 'meta-data'],
    {
      cwd: src,
      timeout: 30_000,
    },
  );
  return out;
}

test('an agent gets its broker and enrollment token from a cloud-init seed, is autosigned and takes a signed command', async (t) => {
  const p = await pkiP;
  const f = await startFleet(t, p);
  const admin = await f.as(p.admin, 'admin', 60_000);
  t.is((await admin('group', 'create', 'web')).exitCode, 0);
  const tok = join(f.dir, 'web.token');
  t.is((await admin('peers', 'token', 'create', '--group', 'web', '-o', tok)).exitCode, 0);
  const token = (await readFile(tok, 'utf8')).trim();
  const indented = token
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
  const pki = await rootPki(p, f.dir);
  const control = {
    fleet: 'prod',
    anchors: ['/certs'],
    enroll: { dir: '/data/identity', peerId: 'seeded-1', pollMs: 200 },
    maxBackoffMs: 500,
  };
  const r = await makeRoot(t, pki, { config: { control, nocloud: { device: '/seed.iso' } } });
  await writeFile(
    join(r.root, 'seed.iso'),
    await readFile(
      await seedIso(
        join(f.dir, 'good'),
        `#cloud-config\nruncmd: [reboot]\nmilkyway:\n  broker: ${f.address}\n  token: |\n${indented}\n`,
      ),
    ),
  );
  const agent = startAgent(t, r);
  await agent.waitFor(
    /cloud-init seed from .*seed\.iso: instance iid-seed-1, hostname seeded, 0 interface\(s\), broker 127\.0\.0\.1:\d+, an enrollment token/,
  );
  await agent.waitFor(/ignored \(this OS runs only what is signed\): user-data runcmd/);
  await agent.waitFor(/control: broker 127\.0\.0\.1:\d+ from the cloud-init seed/);
  await agent.waitFor(/control: enrollment token from the cloud-init seed/);
  const auto = await admin(
    'peers',
    'autosign',
    '--issuer-key',
    p.peerIssuer.keyPath,
    '--issuer-cert',
    p.peerIssuer.certPath,
  );
  // The request may not be there yet on the first pass: run passes until it was decided.
  let out = auto.stdout;
  await until(
    'seeded-1 autosigned',
    async () => {
      if (/accepted seeded-1/.test(out)) return true;
      out = (
        await admin(
          'peers',
          'autosign',
          '--issuer-key',
          p.peerIssuer.keyPath,
          '--issuer-cert',
          p.peerIssuer.certPath,
        )
      ).stdout;
      return /accepted seeded-1/.test(out);
    },
    60_000,
  );
  await until('seeded-1 linked', () => f.broker.peers.has('seeded-1'), 60_000);
  // The token's group: a command to web reaches it and its signed answer verifies.
  await until(
    'seeded-1 answers in web',
    async () => (await admin('status', '--group', 'web', '--timeout', '5')).exitCode === 0,
    60_000,
  );
  const st = await admin('status', '--peer', 'seeded-1', '--json', '--static');
  t.is(st.exitCode, 0, st.stderr);
});

test('a seed whose user-data is a script is refused whole: the agent gets no broker from it', async (t) => {
  const p = await pkiP;
  const f = await startFleet(t, p);
  const pki = await rootPki(p, f.dir);
  const control = {
    fleet: 'prod',
    anchors: ['/certs'],
    enroll: { dir: '/data/identity', pollMs: 200 },
    mdnsPort: 1,
  };
  const r = await makeRoot(t, pki, { config: { control, nocloud: { device: '/seed.iso' } } });
  await writeFile(
    join(r.root, 'seed.iso'),
    await readFile(await seedIso(join(f.dir, 'bad'), `#!/bin/sh\necho ${f.address}\n`)),
  );
  const agent = startAgent(t, r);
  await agent.waitFor(/cloud-init seed refused: E_SEED_INVALID: .*user-data: \(first line\)/);
  await agent.waitFor(/peer link started/);
  t.false(/from the cloud-init seed/.test(agent.output()), agent.output());
  t.is(f.broker.peers.size, 0);
});
