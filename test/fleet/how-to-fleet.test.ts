// doc/how-to-manage-a-fleet.md, executed as written: every `sh` block of the page, in order,
// as one shell session (`bash -euo pipefail`) in a scratch folder, inside a fresh network,
// mount and PID namespace (so the page's 127.0.0.1:7443 is ours alone and everything it starts
// in the background ends with it). The commands come from scripts/install-bin.sh's shims on
// PATH, as after the README's setup. Each command's output is marked in the transcript, and
// the test knows what each command must print: a command the page has and the test does not
// know fails the test, so the page and the test cannot drift apart.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { loadImageKeys } from '../../imagebuild/dev-keys.ts';
import { ROOT, tempDir } from '../helpers.ts';
import { type Known, pageCommands, runPage } from './_howto.ts';

const DOC = join(ROOT, 'doc', 'how-to-manage-a-fleet.md');

test.serial(
  'doc/how-to-manage-a-fleet.md: every command runs as written and does what the page says',
  async (t) => {
    t.timeout(15 * 60_000);
    const dir = await tempDir(t, 'mway-fleet-howto-');
    const bin = join(dir, 'bin');
    const install = await execa(join(ROOT, 'scripts', 'install-bin.sh'), [], {
      env: { MWAY_BIN_DIR: bin },
      reject: false,
    });
    t.is(install.exitCode, 0, install.stderr);
    const cmds = await pageCommands(DOC);
    // What each command of the page must show (its output section of the transcript).
    const known: Known = [
      [/^mway keys new --role user-root --name user-root --out pki/, /user-root/],
      [/^R="--issuer-key pki\/user-root\.key --issuer-cert pki\/user-root\.crt"$/, undefined],
      [/^mway keys crl \$R --crl pki\/user-root\.crl/, /created pki\/user-root\.crl \(0 revoked/],
      [/^mway keys new --role user +--name user /, undefined],
      [/^mway keys new --role broker /, undefined],
      [/^mway keys new --role operator --name alice /, undefined],
      [/^mway keys new --role operator --name ops /, undefined],
      [/^mway keys new --role peer-issuer --name peer-issuer --out pki \$R/, /role +peer-issuer/],
      [/^I="--issuer-key pki\/peer-issuer\.key --issuer-cert pki\/peer-issuer\.crt"$/, undefined],
      [/^cat > broker\.json <<'EOF'/, undefined],
      [/^milkywaysrvd --config broker\.json > broker\.log 2>&1 &$/, undefined],
      [/^cat > secure-payload\.json <<'EOF'/, undefined],
      [
        /^mway keys sign --type config --envelope /,
        /signed secure-payload\.json as a config envelope -> secure\.json/,
      ],
      [/^cat > agent\.json <<'EOF'/, undefined],
      [/^for m in web-1 web-2; do/, undefined],
      [/^mway config init --broker 127\.0\.0\.1:7443 --fleet prod --key pki\/alice\.key/, /config\.json/],
      [/^mway peers pending --wait 2$/, /^[0-9a-f]{32} +web-1 +[0-9a-f]{64}\n +web-1 +(x86_64|aarch64) /m],
      [
        /^grep 'key fingerprint' web-1\.log web-2\.log$/,
        /web-1\.log:.*control: enrolling as web-1: key fingerprint [0-9a-f]{64}\n.*web-2\.log:.*enrolling as web-2/,
      ],
      [/^mway peers accept web-1 \$I --label role=web,zone=a$/, /^accepted web-1 \(key [0-9a-f]{64}\)$/m],
      [/^mway peers accept web-2 \$I --label role=web,zone=b$/, /accepted web-2/],
      [/^mway peers --wait 2$/, /web-1 +online +- +web-1 +(x86_64|aarch64) .*\nweb-2 +online/],
      [/^mway facts$/, /web-1 +web-1 +(x86_64|aarch64) +\S+ +\S/],
      [/^mway keys new --role vendor-root --name vendor-root --out pki$/, undefined],
      [/^mway keys new --role vendor --name vendor --out pki /, undefined],
      [/^mway group create web$/, /group web created/],
      [
        /^mway group add web web-1 web-2 /,
        /added web-1 to web\nadded web-2 to web\ngroup web: 2 peer\(s\), 2 applied, 0 not applied/,
      ],
      [/^mway group remove web web-2 /, /removed web-2 from web/],
      [/^mway group add web --label zone=b /, /added web-2 to web\ngroup web: 1 peer\(s\), 1 applied/],
      [/^mway group list$/, /web: web-1 web-2/],
      [/^mway status +#/, /web-1 +online +verified .*\nweb-2 +online +verified/],
      [
        /^mway status --group web$/,
        [/^web-1 +ok +running/m, /^web-2 +ok +running/m, /2 targeted, 2 succeeded, 0 failed, 0 no answer/],
      ],
      [/^mway status --target 'group:web,!peer:web-2'$/, /web-1 +ok[\s\S]*1 targeted, 1 succeeded/],
      [
        /^mway status --peer web-9 \|\| echo "mway exited \$\?"$/,
        /E_PEER_UNKNOWN: .*web-9[\s\S]*mway exited 1/,
      ],
      [
        /^mway secrets --group web --secret-group app --values DB_PASSWORD=s3cret API_KEY=k$/,
        /2 targeted, 2 succeeded/,
      ],
      [/^MWAY_CONFIG_DIR=ops mway config init /, undefined],
      [
        /^MWAY_CONFIG_DIR=ops mway run --group web -- uname -r /,
        /== web-1 ==\n\S+\n\[exit 0\][\s\S]*2 succeeded/,
      ],
      [
        /^MWAY_CONFIG_DIR=ops mway run --group web -- sh -c 'echo no; exit 3' \|\| echo "mway exited \$\?"$/,
        [
          /^web-1 +failed +E_EXEC_EXIT: sh exited 3$/m,
          /^web-2 +failed +E_EXEC_EXIT/m,
          /== web-1 ==\nno\n\[exit 3\]/,
          /0 succeeded, 2 failed[\s\S]*mway exited 1/,
        ],
      ],
      [/^mway jobs$/, /^[0-9a-f]{32} +exec +group:web +2 targeted, 0 ok, 2 failed, 0 pending +\d+s ago$/m],
      [/^mway audit --verify$/, /verified|ok/i],
      [/^mway keys revoke \$R --cert pki\/ops\.crt --crl pki\/user-root\.crl/, /revoked ops/],
      [/^sleep 3$/, undefined],
      [
        /^MWAY_CONFIG_DIR=ops mway status --group web \|\| echo "mway exited \$\?"$/,
        /E_IDENTITY_REVOKED[\s\S]*mway exited 1/,
      ],
      [
        /^mway crl push pki\/user-root\.crl --group web /,
        [/^web-1 +ok +installed$/m, /^web-2 +ok +installed$/m, /2 succeeded/],
      ],
      [/^mway reboot --peer web-2$/, /web-2 +ok/],
      [/^sleep 2 /, undefined],
      [/^mway peers$/, /web-2 +offline/],
      [/^job=\$\(mway status --peer web-2 --async\)$/, undefined],
      [/^mway job cancel "\$job"$/, /web-2: held back \(offline[\s\S]*1 of 1 open deliveries cancelled/],
      [/^mway poweroff --peer web-1$/, /web-1 +ok/],
    ];
    const logs = async () => {
      const out: string[] = [];
      for (const f of ['broker.log', 'web-1.log', 'web-2.log'])
        out.push(`--- ${f}\n${(await readFile(join(dir, f), 'utf8').catch(() => '')).slice(-3000)}`);
      return out.join('\n');
    };
    await runPage(t, { cmds, known, dir, bin, timeoutMs: 12 * 60_000, logs });
    // The keys folder the page made serves an image build (`"keys": {"dir": "pki"}`).
    const keys = await loadImageKeys(join(dir, 'pki'), { generate: false });
    t.is(keys.userRoot.role, 'user-root');
    // The machines kept what they were sent: the sealed secrets and the pushed CRL.
    for (const m of ['web-1', 'web-2']) {
      t.is(await readFile(join(dir, m, 'data', 'group', 'app', 'secrets', 'DB_PASSWORD'), 'utf8'), 's3cret');
      t.is(
        (await readdir(join(dir, m, 'data', 'control', 'crls'))).filter((f) => f.endsWith('.crl')).length,
        1,
      );
    }
  },
);
