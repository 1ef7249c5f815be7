// QEMU TEST (SLOW: one image build and one TCG boot, ~3 min on 2 cores).
// doc/how-to-enroll-with-cloud-init.md, executed as written: every `sh` block of the page, in
// order, as one shell session (`bash -euo pipefail`) in a scratch folder, inside a fresh
// network, mount and PID namespace (the page's 127.0.0.1:7443 is ours alone; QEMU's user
// network reaches it as 10.0.2.2; everything started in the background ends with it). The
// commands are scripts/install-bin.sh's shims on PATH, as after the README's setup. The test
// knows what each command must print, and a command the page has that the test does not know
// fails it. Beyond the page: the fingerprint `mway peers pending` shows is the one the
// console printed, the signed request carries the seed's name, the guest brought eth0 up from
// the seed and said it ignores nothing it was not given, and the agent never mounted the seed.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { ROOT, tempDir } from '../helpers.ts';
import { type Known, pageCommands, runPage } from './_howto.ts';

const DOC = join(ROOT, 'doc', 'how-to-enroll-with-cloud-init.md');

test.serial(
  'doc/how-to-enroll-with-cloud-init.md: every command runs as written and the seeded guest enrolls and runs a command',
  async (t) => {
    t.timeout(30 * 60_000);
    const dir = await tempDir(t, 'mway-cloud-init-howto-');
    const bin = join(dir, 'bin');
    const install = await execa(join(ROOT, 'scripts', 'install-bin.sh'), [], {
      env: { MWAY_BIN_DIR: bin },
      reject: false,
    });
    t.is(install.exitCode, 0, install.stderr);
    const cmds = await pageCommands(DOC);
    const known: Known = [
      [/^mway keys new --role user-root --name user-root --out pki/, /user-root/],
      [/^R="--issuer-key pki\/user-root\.key --issuer-cert pki\/user-root\.crt"$/, undefined],
      [/^mway keys crl \$R --crl pki\/user-root\.crl$/, /created pki\/user-root\.crl \(0 revoked/],
      [/^mway keys new --role user --name user --out pki \$R$/, undefined],
      [/^mway keys new --role vendor-root --name vendor-root --out pki$/, undefined],
      [/^mway keys new --role vendor --name vendor --out pki /, undefined],
      [/^mway keys secure-boot --kind user --name user --out pki$/, undefined],
      [/^mway keys secure-boot --kind vendor --name vendor --out pki$/, undefined],
      [/^mway keys new --role broker /, undefined],
      [
        /^mway keys new --role operator --name alice --out pki \$R --groups '\*' --actions '\*,exec'$/,
        undefined,
      ],
      [/^mway keys new --role peer-issuer --name peer-issuer --out pki \$R/, /role +peer-issuer/],
      [/^I="--issuer-key pki\/peer-issuer\.key --issuer-cert pki\/peer-issuer\.crt"$/, undefined],
      [/^cat > image\.json <<'EOF'/, undefined],
      [/^mway-image build image\.json -o out$/, /disk\.img/],
      [/^cat > broker\.json <<'EOF'/, undefined],
      [/^milkywaysrvd --config broker\.json > broker\.log 2>&1 &$/, undefined],
      [/^mway config init --broker 127\.0\.0\.1:7443 --fleet prod /, /config\.json/],
      [/^mway group create web$/, /group web created/],
      [
        /^mway peers token create --group web --uses 10 --expires 24h -o web\.token$/,
        /10 use\(s\) until .*, groups web/,
      ],
      [/^mkdir seed$/, undefined],
      [/^cat > seed\/meta-data <<'EOF'/, undefined],
      [/^cat > seed\/network-config <<'EOF'/, undefined],
      [/^\{ printf '#cloud-config\\nmilkyway:/, undefined],
      [/^genisoimage -quiet -output seed\.iso -volid cidata -joliet -rock seed$/, undefined],
      [
        /^mway-image run out\/disk\.img --snapshot --seed seed\.iso --serial web-1\.console > \/dev\/null &$/,
        undefined,
      ],
      [/^vm=\$!$/, undefined],
      [
        /^mway peers pending --wait 1 --timeout 900$/,
        /^[0-9a-f]{32} +web-1 +[0-9a-f]{64}\n +web-1 +x86_64 /m,
      ],
      [
        /^grep 'key fingerprint' web-1\.console$/,
        /control: enrolling as web-1: key fingerprint [0-9a-f]{64}/,
      ],
      [
        /^mway peers autosign \$I$/,
        /^accepted web-1 \(request [0-9a-f]{32}, token [0-9a-f]{32}, groups web\)$/m,
      ],
      [/^mway peers --wait 1 --timeout 300$/, /^web-1 +online +web\b/m],
      [/^mway facts$/, /^web-1 +web-1 +x86_64 +\S+ .*10\.0\.2\.15/m],
      [
        /^mway run --peer web-1 -- cat \/proc\/sys\/kernel\/hostname$/,
        [/^web-1 +ok/m, /== web-1 ==\nweb-1\n\[exit 0\]/],
      ],
      [/^mway group list$/, /web: web-1/],
      [/^mway poweroff --peer web-1$/, /web-1 +ok/],
      [/^wait \$vm$/, undefined],
    ];
    const read = (f: string) => readFile(join(dir, f), 'utf8').catch(() => '');
    const logs = async () =>
      `--- broker.log\n${(await read('broker.log')).slice(-3000)}\n--- web-1.console\n${(await read('web-1.console')).slice(-6000)}`;
    const sections = await runPage(t, { cmds, known, dir, bin, timeoutMs: 28 * 60_000, logs });
    const consoleText = await read('web-1.console');
    // The operator compared the right thing: the request's fingerprint is the console's.
    const pending = sections[known.findIndex(([re]) => re.source.includes('pending'))] ?? '';
    const asked = /key fingerprint ([0-9a-f]{64})/.exec(consoleText)?.[1];
    t.truthy(asked, consoleText.slice(-3000));
    t.regex(pending, new RegExp(`web-1 +${asked ?? 'none'}`));
    // What the guest did with the seed: read it (never mounted), eth0 from network-config.
    t.regex(
      consoleText,
      /cloud-init seed from \/dev\/vd\w+: instance web-1, hostname web-1, 1 interface\(s\), broker 10\.0\.2\.2:7443, an enrollment token/,
    );
    t.regex(consoleText, /cloud-init seed: eth0 up with 10\.0\.2\.15\/24/);
    t.notRegex(consoleText, /mounted \S+ \(\/dev\/vdb\)/);
    t.regex(consoleText, /control: enrolled: certified as web-1/);
  },
);
