// A real server from its container image, unedited: Debian's nginx-light installed by
// mmdebstrap, made an OCI image by umoci with the official image's config (Entrypoint nginx,
// Cmd -g "daemon off;", ExposedPorts 80/tcp, StopSignal SIGQUIT), imported with importOci as
// it is, and run by the agent as PID 1 of a namespace with a network of its own. nginx binds
// port 80, writes its logs, pid file and temp dirs under /var and /run, and drops its workers
// to www-data from the image's /etc/passwd; curl from the namespace gets its page. Its
// Volume (/var/www/html) is the layer's private data, seeded from the image and kept across a
// reboot, while what it wrote elsewhere (its access log) starts afresh.
import test from 'ava';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../../common/exec.ts';
import { readCertificates, readPrivateKey } from '../../../keys/index.ts';
import { importOci, readLayer } from '../../../layers/index.ts';
import { debianImage } from '../../_debian-image.ts';
import { makePki, makeRoot, startAgent } from '../_namespace.ts';
import { comm, descendants } from './_oci-app.ts';
import { NGINX } from './_oci-images.ts';

test('nginx from its Debian-built OCI image runs unedited: port 80, its logs under /var, workers as www-data, curl gets the page', async (t) => {
  t.timeout(30 * 60_000);
  const archive = await debianImage(NGINX);
  const pki = await makePki(t);
  const r = await makeRoot(t, pki);
  const mwl = join(r.root, 'layers', 'nginx.mwl');
  const imported = await importOci({
    archive,
    key: await readPrivateKey(pki.userKeyPath),
    chain: await readCertificates(pki.userCertPath),
    out: mwl,
    name: 'nginx',
    version: '1.22.1',
  });
  t.deepEqual(imported.unmapped, []);
  const service = (await readLayer(mwl)).manifest.services[0];
  t.like(service, {
    name: 'nginx',
    execStart: ['nginx', '-g', 'daemon off;'],
    user: 'root',
    group: 'root',
    writableRoot: 'ephemeral',
    killSignal: 'SIGQUIT',
    readiness: { type: 'tcp', port: 80, host: '127.0.0.1' },
    volumes: ['/var/www/html'],
  });
  t.true(service?.capabilityBoundingSet.includes('CAP_NET_BIND_SERVICE'));

  const boot = async () => {
    const agent = startAgent(t, r, [], { net: true });
    const done = await agent.waitFor(/boot done: [^\n]*/, 300_000);
    t.regex(done, /1 services \(0 failed\)/, agent.output());
    return agent;
  };
  const get = async (agent: Awaited<ReturnType<typeof boot>>, path: string) => {
    const pid = await agent.hostPid();
    const args = ['-t', String(pid), '-n', 'curl', '-sS', '--max-time', '10', '-w', '\\n%{http_code}'];
    return run('nsenter', [...args, `http://127.0.0.1${path}`], { timeout: 30_000, reject: false });
  };
  const a = await boot();
  const agentPid = await a.hostPid();
  const curl = await get(a, '/');
  t.is(curl.exitCode, 0, curl.stderr);
  t.regex(curl.stdout, /<title>Welcome to nginx!<\/title>/);
  t.regex(curl.stdout, /\n200$/);
  // The volume on the data partition, seeded with the image's page; a file put there is served.
  const volume = join(r.root, 'data', 'secure', 'nginx', 'volumes', 'nginx', 'var%2Fwww%2Fhtml');
  t.true((await readdir(volume)).includes('index.nginx-debian.html'));
  await writeFile(join(volume, 'kept.html'), 'kept across boots\n');
  t.regex((await get(a, '/kept.html')).stdout, /^kept across boots\n\n200$/);

  // The master as the image's root and its workers as www-data (uid 33 in the image's passwd).
  const kids = await descendants(agentPid);
  const nginx = [];
  for (const p of kids) if ((await comm(p)) === 'nginx') nginx.push(p);
  t.true(nginx.length >= 2, `nginx processes: ${nginx.length}`);
  const uids = await Promise.all(
    nginx.map(async (p) => /^Uid:\s+(\d+)/m.exec(await readFile(`/proc/${p}/status`, 'utf8'))?.[1]),
  );
  t.true(uids.includes('0'));
  t.true(uids.includes('33'), `uids: ${uids.join(' ')}`);
  // Its access log, in the run's writable layer, has curl's request; the payload has no such file.
  const master = nginx[uids.indexOf('0')] as number;
  const log = await run('nsenter', ['-t', String(master), '-m', 'cat', '/var/log/nginx/access.log'], {
    timeout: 10_000,
    reject: false,
  });
  t.regex(log.stdout, /"GET \/ HTTP\/1\.1" 200 .*curl\//);

  // Stop: the agent sends the image's StopSignal (SIGQUIT, nginx's graceful stop), and exits cleanly.
  await a.kill('SIGTERM');
  t.is(await a.exit, 0);

  // Boot again: the volume kept its file; the access log (in the writable layer) is new.
  const b = await boot();
  t.regex((await get(b, '/kept.html')).stdout, /^kept across boots\n\n200$/);
  const again = [];
  for (const p of await descendants(await b.hostPid())) if ((await comm(p)) === 'nginx') again.push(p);
  const logs = await Promise.all(
    again.map((p) =>
      run('nsenter', ['-t', String(p), '-m', 'cat', '/var/log/nginx/access.log'], {
        timeout: 10_000,
        reject: false,
      }),
    ),
  );
  const lines =
    logs
      .find((l) => l.exitCode === 0)
      ?.stdout.trim()
      .split('\n') ?? [];
  t.is(lines.length, 1, lines.join('\n'));
  await b.kill('SIGTERM');
  t.is(await b.exit, 0);
});
