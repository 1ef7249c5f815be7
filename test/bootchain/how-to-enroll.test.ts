// doc/how-to-enroll-secure-boot-keys.md, run exactly as written (SLOW: one image build, one
// QEMU enrollment boot and one Secure Boot boot; ~10–20 min on 2 shared cores). Every ```sh
// line is run in a fresh folder as a user would; `mway-image run` is stopped the way the page
// says (Ctrl-C once) after the console shows the firmware trusted the enrolled keys and
// CoreOS came up.
import test from 'ava';
import { execa } from 'execa';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BINS, cli, ROOT, tempDir } from '../helpers.ts';

function words(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/"([^"]*)"|(\S+)/g)) out.push(m[1] ?? m[2] ?? '');
  return out;
}

test('doc/how-to-enroll-secure-boot-keys.md works as written: enrolled keys boot the chain under Secure Boot', async (t) => {
  t.timeout(60 * 60_000);
  const doc = await readFile(join(ROOT, 'doc', 'how-to-enroll-secure-boot-keys.md'), 'utf8');
  const lines = [...doc.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => (m[1] ?? '').trim().split('\n'));
  t.true(lines.length >= 5, 'the page has its commands');
  const cwd = await tempDir(t, 'mway-howto-enroll-');
  for (const line of lines) {
    const [bin, ...args] = words(line);
    if (bin !== 'mway' && bin !== 'mway-image') return t.fail(`unexpected command ${line}`);
    if (bin === 'mway-image' && args[0] === 'run') {
      const child = execa(process.execPath, [BINS['mway-image'], ...args], {
        cwd,
        reject: false,
        timeout: 30 * 60_000,
      });
      let exited = false;
      void child.then(() => {
        exited = true;
      });
      const seen = await new Promise<string>((resolve) => {
        const timer = setInterval(async () => {
          const log = await readFile(join(cwd, 'out', 'console.log'), 'utf8').catch(() => '');
          // Ctrl-C once CoreOS's agent is up ("then CoreOS"): it handles the power button. A
          // press during the stage-2 kernel's boot is lost, and the run then waited out the
          // test's 120 s second Ctrl-C.
          if (/milkyway-agent info: boot done:/.test(log) || /MILKYWAY|Access Denied/.test(log) || exited) {
            clearInterval(timer);
            resolve(log);
          }
        }, 2000);
      });
      t.regex(
        seen,
        /mway-stage1: Secure Boot on: firmware verified this stage 1 against db \(signed by "CN=user Secure Boot DB"\)/,
      );
      t.regex(seen, /slot a: stage 2 milkyway 1\.0\.0 .* verified: ML-DSA-65/);
      t.regex(seen, /kexec_file_load accepted the stage-2 kernel/);
      child.kill('SIGINT'); // "Press Ctrl-C once": the power button
      setTimeout(() => child.kill('SIGINT'), 120_000).unref();
      const r = await child;
      t.is(r.exitCode, 0, `Ctrl-C once powers the guest off: run exited ${r.exitCode}\n${r.stdout}`);
      continue;
    }
    const r = await cli(bin, args, { cwd, timeout: 30 * 60_000 });
    t.is(r.exitCode, 0, `${line}\n${r.stdout}\n${r.stderr}`);
  }
});
