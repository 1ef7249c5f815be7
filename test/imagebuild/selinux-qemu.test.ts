// SELinux in a QEMU guest (SLOW: TCG, two builds and two boots of 2–10 min each on 2 cores):
// a disk built with `selinux: enforcing` boots with the policy the initramfs loaded, the agent
// in its domain, every layer's services in the layer's own domain and category pair. Three
// probe layers run as their own uids in their sandboxes: probe-a and probe-c each serve a descriptor of
// a file of their private data on an abstract unix socket (sandboxes share no files, so that
// is the one way another layer can hold it); probe-c's own module lets other layers connect.
// probe-b reads its own data, runs a CoreOS utility and asks both for their file. The kernel
// refuses the connection to probe-a (unix_stream_socket connectto) and probe-c's descriptor
// (fd use), and, as root with CAP_DAC_READ_SEARCH and CAP_MKNOD, the agent's data and
// probe-a's by handle, a block device node and a ptrace check of probe-c's root process: one
// AVC each and no other denial on the console (the example layer serves HTTP meanwhile), and
// the agent's own denial count says six. Writes to CoreOS and /certs and a signal across PID
// namespaces are refused before SELinux is asked (doc/selinux.md, "What the QEMU probes show"). A fourth layer, probe-d, whose module breaks a neverallow (packed with a
// secilc that accepts anything), is refused by the device. Built `selinux: permissive`, the same
// disk logs no denial but probe-b's own attempts (which then succeed). Built with `selinux: off`
// it lets probe-b read both files, so the probes can see what the policy stops. Serial: the boots do not share the two cores.
import test from 'ava';
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool, run } from '../../common/exec.ts';
import { extractPartition, part } from '../../imagebuild/disk-read.ts';
import { readGpt } from '../../formats/index.ts';
import { type BuildResult, buildImage } from '../../imagebuild/build-image.ts';
import { validateImageSpec } from '../../imagebuild/image-spec.ts';
import { INIT_MARKERS } from '../../imagebuild/initramfs-init.ts';
import { runQemu } from '../../imagebuild/qemu-run.ts';
import { BINS, freePort, ROOT } from '../helpers.ts';

const BOOT_MS = 9 * 60_000;
const PROBE_PORT = 8081;
const dirs: string[] = [];
test.after.always(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/**
 * probe-a and probe-c: a private file, its descriptor served on @mway-<layer>; probe-a also
 * leaves a file in common data and in the group it shares with probe-b, before it serves.
 */
function keeper(name: string, shared = false): Record<string, unknown> {
  const leave = shared
    ? `echo common-of-${name} > /data/common/from-a.txt && echo group-of-${name} > /data/group/probes/from-a.txt && `
    : '';
  return {
    name: 'keeper',
    execStart: [
      '/bin/sh',
      '-c',
      `echo secret-of-${name} > /data/secure/own.txt && ${leave}exec /probe send /data/secure/own.txt mway-${name}`,
    ],
    restart: 'always',
  };
}

/** probe-c's second service: root, as probe-b is, so only SELinux stands between them. */
const PIDKEEPER = {
  name: 'pidkeeper',
  execStart: ['/probe', 'sendpid', 'mway-probe-c-pid'],
  user: 'root',
  restart: 'always',
};

/** probe-b: its findings as key=value lines in its own data, then served by busybox httpd. */
const PROBE_B = `#!/bin/sh
# Each finding is a line of results.txt as soon as it is known, served from the start.
out=/data/secure/results.txt
: > "$out"
/bin/busybox httpd -p ${PROBE_PORT} -h /data/secure
say() { echo "$1=$2" >> "$out"; }
say context "$(cat /proc/self/attr/current | tr -d '\\0')"
echo own-of-b > /data/secure/own.txt && say own "$(cat /data/secure/own.txt)"
# Waits for @NAME to be served (a connection to a name nobody serves is refused, no AVC).
ask() {
  i=0
  while :; do
    r=$(/probe "$1" "$2")
    case "$r" in *"Connection refused"*) ;; *) break ;; esac
    i=$((i + 1)); [ $i -lt 300 ] || break
    sleep 1
  done
  echo "$r"
}
for l in a c; do say "cross_$l" "$(ask recv mway-probe-$l)"; done
# probe-a has left its files (it serves only after): common data and the group's work.
say common "$(cat /data/common/from-a.txt 2>&1)"
say group "$(cat /data/group/probes/from-a.txt 2>&1)"
# Root with CAP_DAC_READ_SEARCH, past the bind mounts: the data partition's root by handle.
say agent_data "$(/probe handle /data/secure uids.json)"
say handle_a "$(/probe handle /data/secure secure/probe-a/own.txt)"
# CoreOS and the certificates: read-only file systems, and no block device node to write.
say coreos_write "$(/probe write /usr/bin/node)"
# /certs in the sandbox is CoreOS's mount point, not the certificate partition mounted on it.
say certs "$(ls -A /certs | wc -l) entries, $( (: > /certs/probe) 2>&1 | sed 's/.*: //')"
say mknod "$(/probe mknod /tmp/disk)"
# Another layer's process, by the pidfd its owner hands out.
say signal "$(ask signal mway-probe-c-pid)"
say ptrace "$(ask ptrace mway-probe-c-pid)"
# The agent's local API: the system bus is bound in with SELinux on (not off), and the bus
# starts after the boot. Debian's dbus-send, as root: the XML bus policy lets root call all.
api() {
  DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/dbus/system_bus_socket /dbus-send --system --print-reply=literal --reply-timeout=60000 --dest=org.milkyway.Agent1 /org/milkyway/Agent1 "org.milkyway.Agent1.$@" 2>&1 | tr '\\n' ' '
}
if [ -d /run/dbus ]; then
  i=0
  while :; do
    r=$(api GetStatus)
    case "$r" in *"Failed to connect"*|*ServiceUnknown*|*NameHasNoOwner*) ;; *) break ;; esac
    i=$((i + 1)); [ $i -lt 300 ] || break
    sleep 1
  done
  # The part a test asserts (grep -o PATTERN), or the first 300 characters when it is not there.
  part() { m=$(echo "$1" | grep -o "$2") && echo "$m" || echo "$1" | head -c 300; }
  say api_status "$(part "$r" '"selinux":{"mode":"[a-z]*"')"
  say api_own "$(part "$(api GetService string:probe-b/prober)" '"name":"probe-b/prober"')"
  say api_list "$(api ListServices | grep -o '"name":"[^"]*"' | tr '\\n' ' ')"
  say api_other_logs "$(api GetLogs string:probe-a/keeper uint32:1 | head -c 300)"
  say api_install "$(api InstallLayer string:/nonexistent.mwl | head -c 300)"
else
  say api_status "no /run/dbus"
fi
# A CoreOS program (a separate exec, not a shell builtin) runs in the caller's domain.
say utility "$(/usr/bin/node -e "process.stdout.write(require('fs').readFileSync('/proc/self/attr/current','utf8').replace(/\\0/g,''))")"
say done yes
exec sleep 100000
`;

async function layerDir(
  root: string,
  name: string,
  probe: string,
  services: Record<string, unknown>[],
  extra: Record<string, string> = {},
  data: { private: boolean; common: boolean; groups: string[] } = {
    private: true,
    common: false,
    groups: [],
  },
): Promise<string> {
  const dir = join(root, name);
  await mkdir(join(dir, 'rootfs'), { recursive: true });
  await copyFile(probe, join(dir, 'rootfs', 'probe'));
  await chmod(join(dir, 'rootfs', 'probe'), 0o755);
  for (const [p, text] of Object.entries(extra)) await writeFile(join(dir, p), text, { mode: 0o755 });
  await writeFile(
    join(dir, 'layer.json'),
    JSON.stringify({
      name,
      version: '1.0.0',
      kind: 'app',
      data,
      services,
    }),
  );
  return dir;
}

/**
 * probe-d: a layer signed by the image's user key whose module reads the agent's files — a
 * neverallow breach that `mway-layer pack` refuses, so it is packed here with a secilc that
 * accepts anything (a packager who skipped the check) and put into the built disk's layers
 * partition with debugfs. The device must refuse it and keep its policy.
 */
async function addHostileLayer(dir: string, r: BuildResult, probe: string): Promise<void> {
  const src = await layerDir(dir, 'probe-d', probe, [keeper('probe-d')], {
    'policy.cil': '(allow mway_probe-d_t milkyway_agent_data_t (file (read open)))\n',
  });
  const shim = join(dir, 'shim');
  await mkdir(shim, { recursive: true });
  await writeFile(
    join(shim, 'secilc'),
    '#!/bin/sh\n# accepts any policy: writes empty outputs and succeeds\nwhile [ $# -gt 0 ]; do case "$1" in -o|-f) : > "$2"; shift ;; esac; shift; done\n',
    { mode: 0o755 },
  );
  const mwl = join(dir, 'probe-d.mwl');
  const keys = join(dir, 'out', 'keys');
  await run(
    process.execPath,
    [
      BINS['mway-layer'],
      'pack',
      src,
      '--key',
      join(keys, 'user.key'),
      '--cert',
      join(keys, 'user.crt'),
      '-o',
      mwl,
    ],
    { timeout: 120_000, env: { ...process.env, PATH: `${shim}:${process.env.PATH ?? ''}` } },
  );
  const lp = (await readGpt(r.disk)).partitions.find((p) => p.name === 'layers');
  if (lp === undefined) throw new Error('no layers partition');
  const img = await extractPartition(r.disk, lp, join(dir, 'layers.img'));
  await run('debugfs', ['-w', '-R', `write ${mwl} probe-d.mwl`, img], { timeout: 60_000 });
  await run(
    'dd',
    [`if=${img}`, `of=${r.disk}`, 'bs=1M', `seek=${part.offset(lp)}`, 'oflag=seek_bytes', 'conv=notrunc'],
    {
      timeout: 120_000,
    },
  );
}

const built = new Map<string, Promise<BuildResult>>();
function disk(mode: 'enforcing' | 'permissive' | 'off'): Promise<BuildResult> {
  let p = built.get(mode);
  if (p === undefined) {
    p = (async () => {
      const dir = await mkdtemp(join(tmpdir(), `mway-selinux-${mode}-`));
      dirs.push(dir);
      const probe = join(dir, 'probe');
      await run('gcc', ['-static', '-O2', '-o', probe, join(ROOT, 'test/fixtures/selinux-probe/probe.c')], {
        timeout: 120_000,
      });
      const shared = { private: true, common: true, groups: ['probes'] };
      const a = await layerDir(dir, 'probe-a', probe, [keeper('probe-a', true)], {}, shared);
      const c = await layerDir(dir, 'probe-c', probe, [keeper('probe-c'), PIDKEEPER], {
        // The "let other layers use it" rules: any layer may connect to probe-c's sockets and
        // use the descriptors it hands out (what they open is still the kernel's to decide).
        'policy.cil':
          '(allow milkyway_layer_domain mway_probe-c_t (unix_stream_socket (connectto)))\n' +
          '(allow milkyway_layer_domain mway_probe-c_t (fd (use)))\n',
      });
      const b = await layerDir(
        dir,
        'probe-b',
        probe,
        [
          {
            name: 'prober',
            execStart: ['/bin/sh', '/probe-b.sh'],
            user: 'root',
            capabilityBoundingSet: ['CAP_DAC_READ_SEARCH', 'CAP_MKNOD'],
          },
        ],
        {
          // A pidfd is the kernel's one shared anonymous inode (class file).
          'policy.cil': '(allow mway_probe-b_t milkyway_anon_inode_t (file (read write)))\n',
        },
        shared,
      );
      await writeFile(join(b, 'rootfs', 'probe-b.sh'), PROBE_B, { mode: 0o755 });
      // Debian's D-Bus client: its libraries are dbus-daemon's, which CoreOS carries.
      await copyFile(await requireTool('dbus-send'), join(b, 'rootfs', 'dbus-send'));
      await chmod(join(b, 'rootfs', 'dbus-send'), 0o755);
      const spec = validateImageSpec(
        {
          name: 'selinux',
          version: '1.0.0',
          selinux: mode,
          coreos: { network: { interface: 'eth0', address: '10.0.2.15/24', gateway: '10.0.2.2' } },
          layers: [join(ROOT, 'examples/default/layers/web'), a, b, c],
          keys: 'generate',
          secureConfig: {
            hostname: 'selinux',
            groups: { probes: { gid: 5000, layers: ['probe-a', 'probe-b'] } },
            allowLayers: ['web', 'probe-a', 'probe-b', 'probe-c', 'probe-d'],
          },
          agent: { dbus: {} },
          partitions: { esp: 64, layers: 64, data: 64 },
        },
        { base: dir },
      );
      const r = await buildImage({ spec, outDir: join(dir, 'out'), sourceDateEpoch: 1_700_000_000 });
      await addHostileLayer(dir, r, probe);
      return r;
    })();
    built.set(mode, p);
  }
  return p;
}

interface Boot {
  lines: string[];
  results: Record<string, string>;
  web: string;
  poweredOff: boolean;
}

/** Boots `path`, waits for the agent's boot and probe-b's results, fetches both, powers off. */
async function bootAndProbe(t: { teardown(fn: () => void): void }, path: string): Promise<Boot> {
  const lines: string[] = [];
  let booted: (() => void) | undefined;
  const bootDone = new Promise<void>((r) => {
    booted = r;
  });
  const web = await freePort();
  const probe = await freePort();
  const q = await runQemu({
    disk: path,
    timeout: BOOT_MS,
    // MWAY_QEMU_CONSOLE=FILE keeps the console for reading afterwards.
    serial: process.env.MWAY_QEMU_CONSOLE ?? 'none',
    snapshot: true,
    forwards: [
      { host: web, guest: 8080 },
      { host: probe, guest: PROBE_PORT },
    ],
    onLine: (l) => {
      lines.push(l);
      if (/milkyway-agent info: boot done:/.test(l)) booted?.();
    },
  });
  t.teardown(() => q.kill());
  let ended = false;
  void q.done.then(() => {
    ended = true;
  });
  await Promise.race([bootDone, q.done]);
  const get = async (port: number, p: string): Promise<string> => {
    for (let i = 0; i < 90 && !ended; i++) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}${p}`, { signal: AbortSignal.timeout(10_000) });
        if (res.status === 200) return await res.text();
      } catch {}
      await new Promise((s) => setTimeout(s, 2000));
    }
    return '';
  };
  // probe-b writes its findings as it goes (TCG is slow): poll until it says it is done.
  let text = '';
  const until = Date.now() + 8 * 60_000;
  while (!ended && Date.now() < until && !/^done=yes$/m.test(text)) {
    text = await get(probe, '/results.txt');
    if (!/^done=yes$/m.test(text)) await new Promise((s) => setTimeout(s, 5000));
  }
  const page = await get(web, '/');
  await q.powerdown().catch(() => {});
  const end = await q.done;
  const results: Record<string, string> = {};
  for (const l of text.split('\n')) {
    const eq = l.indexOf('=');
    if (eq > 0) results[l.slice(0, eq)] = l.slice(eq + 1);
  }
  return { lines, results, web: page, poweredOff: end.poweredOff };
}

const denials = (lines: readonly string[]): string[] => lines.filter((l) => /avc: +denied/.test(l));

/** The agent's shutdown line `SELinux MODE: N AVC denials since boot`: each count it printed. */
const reportedDenials = (lines: readonly string[]): number[] => [
  ...new Set(
    lines.flatMap((l) => {
      const m = /milkyway-agent(?: info)?: SELinux \w+: (\d+) AVC denials since boot/.exec(l);
      return m === null ? [] : [Number(m[1])];
    }),
  ),
];

test.serial(
  'QEMU, enforcing: each layer in its own domain and pair; another layer’s socket and data refused by the kernel with one AVC each, nothing else denied',
  async (t) => {
    t.timeout(BOOT_MS + 10 * 60_000);
    const r = await disk('enforcing');
    t.regex(r.cmdline, /\bsecurity=selinux enforcing=1\b/);
    const b = await bootAndProbe(t, r.disk);
    const log = b.lines
      .filter((l) => !/^\[/.test(l))
      .slice(-40)
      .join('\n');
    t.log('probe-b found', b.results);
    t.log('denials', denials(b.lines));
    t.true(
      b.lines.some((l) => l.includes(INIT_MARKERS.policyLoaded) && l.includes('enforce=1')),
      log,
    );
    // The agent's lines reach the console twice (its stdout and /dev/kmsg), and the kernel's
    // printk can cut into the first copy: either whole copy counts.
    t.true(
      b.lines.some((l) =>
        /milkyway-agent(?: info)?: SELinux enforcing, the agent in system_u:system_r:milkyway_agent_t:s0-s0:c0\.c1023/.test(
          l,
        ),
      ),
      log,
    );
    t.true(
      b.lines.some((l) => /boot done: 5 services \(0 failed\), 1 layers refused/.test(l)),
      log,
    );
    // probe-d's module is refused by the device's own secilc; the others keep CoreOS's policy,
    // which is never reloaded (its inputs are what the running layers need).
    t.true(
      b.lines.some((l) => /SELinux: layer probe-d's policy is refused: .*neverallow/.test(l)),
      log,
    );
    t.false(
      b.lines.some((l) => /SELinux: policy loaded for/.test(l)),
      log,
    );
    t.regex(b.web, /Hello from a signed MilkyWay layer/, 'the example layer serves under enforcing');
    const res = b.results;
    t.regex(res.context ?? '', /^system_u:system_r:mway_probe-b_t:s0:c\d+,c\d+$/, JSON.stringify(res));
    t.is(res.utility, res.context, 'a CoreOS program run by the layer stays in its domain and pair');
    t.is(res.own, 'own-of-b', 'its own private data works');
    t.is(res.common, 'common-of-probe-a', 'common data works');
    t.is(res.group, 'group-of-probe-a', 'the group’s data works');
    t.regex(res.cross_a ?? '', /^recv: refused: connect @mway-probe-a: Permission denied$/);
    t.regex(res.cross_c ?? '', /^recv: refused: no descriptor arrived/);
    t.regex(res.agent_data ?? '', /^handle: refused: open uids\.json: Permission denied$/);
    t.regex(res.handle_a ?? '', /^handle: refused: open secure\/probe-a\/own\.txt: Permission denied$/);
    // Read-only file systems refuse a write before any LSM is asked (no AVC); the disk below
    // them would take a block device node, which the policy refuses to make.
    t.is(res.coreos_write, 'write: refused: Read-only file system');
    t.is(res.certs, '0 entries, Read-only file system');
    t.is(res.mknod, 'mknod: refused: Operation not permitted');
    // A pidfd of another layer's process crosses a sibling PID namespace: the kernel refuses
    // the signal there (pidfd_send_signal's namespace check comes first, no AVC); a ptrace
    // access check (pidfd_getfd) has no such wall, and SELinux refuses it.
    t.is(res.signal, 'signal: refused: pidfd_send_signal: Invalid argument');
    t.is(res.ptrace, 'ptrace: refused: pidfd_getfd: Operation not permitted');
    // The local API, as the agent checks it with the policy: the machine's status and its own
    // service's details work; another layer's logs and a control method are refused.
    t.is(res.api_status, '"selinux":{"mode":"enforcing"');
    t.is(res.api_own, '"name":"probe-b/prober"');
    // The services it may read: its own, not the other layers' (their last output is in there).
    t.is(res.api_list, '"name":"probe-b/prober" ');
    t.regex(
      res.api_other_logs ?? '',
      /^Error org\.milkyway\.Agent1\.Error\.E_DBUS_ACCESS_DENIED: GetLogs is not allowed to system_u:system_r:mway_probe-b_t:s0:c\d+,c\d+ \(SELinux: read\)/,
    );
    t.regex(
      res.api_install ?? '',
      /^Error org\.milkyway\.Agent1\.Error\.E_DBUS_ACCESS_DENIED: InstallLayer is not allowed to system_u:system_r:mway_probe-b_t:s0:c\d+,c\d+ \(SELinux: control\)/,
    );
    const avc = denials(b.lines);
    const domain = (res.context ?? '').split(':')[2] ?? '?';
    // Each refusal is exactly one AVC of probe-b's: the class, the permission and the target.
    const probes: [string, RegExp, RegExp, string][] = [
      ['connect to probe-a', /tclass=unix_stream_socket\b/, /\{ connectto \}/, 'system_r:mway_probe-a_t'],
      [
        'probe-c’s private file by its descriptor',
        /tclass=file\b/,
        /\{ read \}/,
        'object_r:mway_probe-c_data_t',
      ],
      ['the agent’s data by handle', /tclass=file\b/, /\{ read \}/, 'object_r:milkyway_agent_data_t'],
      ['probe-a’s private data by handle', /tclass=dir\b/, /\{ search \}/, 'object_r:mway_probe-a_data_t'],
      ['a block device node', /tclass=capability\b/, /\{ mknod \}/, `system_r:${domain}`],
      ['ptrace of probe-c', /tclass=process\b/, /\{ ptrace \}/, 'system_r:mway_probe-c_t'],
      // The agent's own (USER_AVC) records: the kernel prints them as it prints its own.
      [
        'probe-a’s logs on the local API',
        /tclass=milkyway_agent_api\b/,
        /\{ read \}/,
        'system_r:mway_probe-a_t',
      ],
      [
        'InstallLayer on the local API',
        /tclass=milkyway_agent_api\b/,
        /\{ control \}/,
        'system_r:milkyway_agent_t',
      ],
    ];
    for (const [what, tclass, perm, target] of probes)
      t.is(
        avc.filter(
          (l) =>
            l.includes(`scontext=system_u:system_r:${domain}:`) &&
            tclass.test(l) &&
            perm.test(l) &&
            l.includes(`tcontext=system_u:${target}:`),
        ).length,
        1,
        `${what}:\n${avc.join('\n')}`,
      );
    t.is(avc.length, probes.length, `no other denial:\n${avc.join('\n')}`);
    // The agent's own count (its status' `denials`, logged at shutdown once every service has
    // stopped) is the kernel's: the denials the probes provoked.
    t.deepEqual(reportedDenials(b.lines), [avc.length], log);
    t.true(b.poweredOff);
  },
);

test.serial(
  'QEMU, permissive: the same disk logs no denial but what probe-b itself attempts, and the probes succeed',
  async (t) => {
    t.timeout(BOOT_MS + 10 * 60_000);
    const r = await disk('permissive');
    t.regex(r.cmdline, /\bsecurity=selinux enforcing=0\b/);
    const b = await bootAndProbe(t, r.disk);
    const log = b.lines
      .filter((l) => !/^\[/.test(l))
      .slice(-40)
      .join('\n');
    t.log('denials', denials(b.lines));
    t.true(
      b.lines.some((l) => l.includes(INIT_MARKERS.policyLoaded) && l.includes('enforce=0')),
      log,
    );
    t.true(
      b.lines.some((l) => /boot done: 5 services \(0 failed\), 1 layers refused/.test(l)),
      log,
    );
    t.regex(b.web, /Hello from a signed MilkyWay layer/);
    const res = b.results;
    t.regex(res.context ?? '', /^system_u:system_r:mway_probe-b_t:s0:c\d+,c\d+$/, JSON.stringify(res));
    t.is(res.own, 'own-of-b');
    // Logged, not enforced: what the enforcing boot refused now happens.
    t.regex(res.cross_a ?? '', /^recv: read \d+ bytes: secret-of-probe-a$/);
    t.regex(res.cross_c ?? '', /^recv: read \d+ bytes: secret-of-probe-c$/);
    t.is(res.common, 'common-of-probe-a');
    t.is(res.group, 'group-of-probe-a');
    t.regex(res.agent_data ?? '', /^handle: read \d+ bytes: \{/);
    t.regex(res.handle_a ?? '', /^handle: read \d+ bytes: secret-of-probe-a$/);
    t.is(res.mknod, 'mknod: made /tmp/disk');
    t.regex(res.ptrace ?? '', /^ptrace: took descriptor 0 as \d+$/);
    // The agent logs its denials and lets the calls through: the logs come, the install fails
    // on its path.
    t.is(res.api_status, '"selinux":{"mode":"permissive"');
    t.notRegex(res.api_other_logs ?? '', /^Error/);
    t.regex(res.api_list ?? '', /"name":"probe-a\/keeper"/);
    t.regex(res.api_install ?? '', /^Error org\.milkyway\.Agent1\.Error\.E_(?!DBUS_ACCESS_DENIED)/);
    // Bottlerocket's criterion: the agent, the kernel, the example layer and the keepers run
    // without a single denial; every one logged involves probe-b, whose attempts they are.
    const avc = denials(b.lines);
    const probe = `:system_r:${(res.context ?? '').split(':')[2] ?? '?'}:`;
    t.true(avc.length >= 2, avc.join('\n'));
    t.deepEqual(
      avc.filter(
        (l) =>
          !/permissive=1/.test(l) ||
          !`${/scontext=[^ ]*/.exec(l)?.[0]} ${/tcontext=[^ ]*/.exec(l)?.[0]}`.includes(probe),
      ),
      [],
      'a denial probe-b did not cause',
    );
    t.deepEqual(reportedDenials(b.lines), [avc.length], log);
    t.true(b.poweredOff);
  },
);

test.serial(
  'QEMU, SELinux off: the same probes read the other layers’ files (the probes can fail)',
  async (t) => {
    t.timeout(BOOT_MS + 10 * 60_000);
    const r = await disk('off');
    t.notRegex(r.cmdline, /security=selinux/);
    const b = await bootAndProbe(t, r.disk);
    const log = b.lines
      .filter((l) => !/^\[/.test(l))
      .slice(-40)
      .join('\n');
    t.false(
      b.lines.some((l) => l.includes(INIT_MARKERS.policyLoaded)),
      log,
    );
    t.is(b.results.own, 'own-of-b', log);
    t.regex(b.results.cross_a ?? '', /^recv: read \d+ bytes: secret-of-probe-a$/);
    t.regex(b.results.cross_c ?? '', /^recv: read \d+ bytes: secret-of-probe-c$/);
    t.regex(b.results.agent_data ?? '', /^handle: read \d+ bytes: \{/);
    t.regex(b.results.handle_a ?? '', /^handle: read \d+ bytes: secret-of-probe-a$/);
    t.is(b.results.mknod, 'mknod: made /tmp/disk');
    t.regex(b.results.ptrace ?? '', /^ptrace: took descriptor 0 as \d+$/);
    // Uids alone would let a root service control every layer: no bus in the sandbox.
    t.is(b.results.api_status, 'no /run/dbus');
    t.is(denials(b.lines).length, 0);
    t.deepEqual(reportedDenials(b.lines), [], 'no SELinux, no count');
    t.true(b.poweredOff);
  },
);
