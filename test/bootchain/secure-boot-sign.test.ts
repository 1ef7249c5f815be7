// sbSign's frozen clock: SOURCE_DATE_EPOCH moved into the signer certificate's validity, because
// the locked-down kernel's kexec_file_load refuses a signingTime outside it (EKEYREJECTED). Checked
// with OpenSSL reading the PKCS#7 signature sbsign wrote, and sbverify.
import test from 'ava';
import { execa } from 'execa';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { certificateTable, sbSign, sbVerify, signingTime } from '../../bootchain/index.ts';
import { newSecureBootKeys, secureBootFiles } from '../../keys/index.ts';
import { tempDir } from '../helpers.ts';

const PE = '/usr/lib/systemd/boot/efi/systemd-bootx64.efi';

/** The signingTime attribute of the PKCS#7 in a signed PE, as OpenSSL prints it. */
async function pkcs7SigningTime(dir: string, signed: string): Promise<Date> {
  const b = await readFile(signed);
  const t = certificateTable(b);
  // WIN_CERTIFICATE: dwLength, wRevision, wCertificateType (8 bytes), then the DER PKCS#7.
  const der = join(dir, 'sig.der');
  await writeFile(der, b.subarray(t.offset + 8, t.offset + b.readUInt32LE(t.offset)));
  // asn1parse, not cms: OpenSSL's CMS reader refuses Authenticode's SpcIndirectDataContent.
  const r = await execa('openssl', ['asn1parse', '-inform', 'DER', '-in', der], { timeout: 60_000 });
  const m = /:signingTime\n.*\n.*UTCTIME\s*:(\d{12})Z/.exec(r.stdout);
  if (m?.[1] === undefined) throw new Error(`no signingTime in:\n${r.stdout}`);
  const d = m[1];
  return new Date(
    `20${d.slice(0, 2)}-${d.slice(2, 4)}-${d.slice(4, 6)}T${d.slice(6, 8)}:${d.slice(8, 10)}:${d.slice(10, 12)}Z`,
  );
}

test('signingTime() moves an epoch before, inside and after the certificate window into it', async (t) => {
  const dir = await tempDir(t, 'mway-sbtime-');
  await newSecureBootKeys({ dir, kind: 'vendor', name: 'v', days: 10 });
  const pem = await readFile(secureBootFiles(dir, 'kexec').cert, 'utf8');
  const from = Math.floor(Date.now() / 1000) - 120;
  const at = signingTime(pem, 1_700_000_000, 'kexec.crt');
  t.true(at >= from && at <= Date.now() / 1000 + 1, 'an older epoch becomes notBefore');
  t.is(signingTime(pem, at + 3600, 'kexec.crt'), at + 3600, 'inside the window it stays');
  t.is(signingTime(pem, at + 400 * 86_400, 'kexec.crt'), at + 10 * 86_400, 'after it, notAfter');
  t.throws(() => signingTime('junk', 0, 'junk.crt'), {
    message: /junk\.crt is not a PEM X\.509 certificate/,
  });
});

test('sbSign() with a key made today and an older SOURCE_DATE_EPOCH signs at notBefore, the same bytes twice', async (t) => {
  const dir = await tempDir(t, 'mway-sbsign-');
  await newSecureBootKeys({ dir, kind: 'vendor', name: 'v' });
  const signer = secureBootFiles(dir, 'kexec');
  const [a, b] = [join(dir, 'a.efi'), join(dir, 'b.efi')];
  for (const output of [a, b]) await sbSign({ input: PE, output, signer, epoch: 1_700_000_000 });
  t.deepEqual(await readFile(a), await readFile(b), 'reproducible');
  await sbVerify(a, signer.cert);
  const notBefore = (await execa('openssl', ['x509', '-in', signer.cert, '-noout', '-startdate'])).stdout;
  const when = await pkcs7SigningTime(dir, a);
  t.is(
    when.getTime(),
    new Date(notBefore.replace('notBefore=', '')).getTime(),
    `${notBefore} vs ${when.toISOString()}`,
  );
});
