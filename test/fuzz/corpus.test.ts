// The regression corpus of the hostile-input audit and the mutation harness (issue 12): each
// file of test/fixtures/hostile/ once crashed a decoder without a code or was accepted, and must
// now be refused with a code doc/errors-*.md lists — never E_INTERNAL, never an uncoded error,
// never a hang. The prefix of a file's name picks the decoder; a file no decoder claims fails
// the test, so a new entry cannot be skipped by accident. test/fixtures/hostile/README.md says
// what made each one.
import test from 'ava';
import { execa } from 'execa';
import { createHash, X509Certificate } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isMilkyWayError } from '../../common/index.ts';
import { parseCertificates, parseCrl, readCertificates, readCrls, verifyEnvelope } from '../../keys/index.ts';
import { ROOT } from '../helpers.ts';
import { documentedCodes } from './_codes.ts';

const DIR = join(ROOT, 'test', 'fixtures', 'hostile');

/** Decoder by name prefix and extension: the function a user's input reaches first. */
const DECODERS: [RegExp, (path: string) => Promise<unknown>][] = [
  [/^cert-.*\.der$/, async (p) => parseCertificates(new Uint8Array(await readFile(p)))],
  [/^cert-.*\.pem$/, (p) => readCertificates(p)],
  [/^crl-.*\.der$/, async (p) => parseCrl(new Uint8Array(await readFile(p)))],
  [/^crl-.*\.crl$/, (p) => readCrls(p)],
  // With no anchor at all: whatever it is, the envelope must be refused before trust is asked.
  [/^envelope-.*\.json$/, async (p) => verifyEnvelope(await readFile(p), { type: 'file', anchors: [] })],
];

const files = readdirSync(DIR).filter((n) => n !== 'README.md');
const codes = documentedCodes();

test('the corpus is not empty and every file has a decoder', (t) => {
  t.true(files.length >= 7);
  for (const f of files)
    t.true(
      DECODERS.some(([re]) => re.test(f)),
      `${f}: no decoder claims it`,
    );
});

for (const f of files) {
  test(`corpus: ${f} is refused with a documented code`, async (t) => {
    const decode = DECODERS.find(([re]) => re.test(f))?.[1];
    if (decode === undefined) return t.fail(`${f}: no decoder`);
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${f}: no answer in 20 s (a hang)`)), 20_000);
    });
    const e = await Promise.race([decode(join(DIR, f)), hang]).then(
      () => undefined,
      (err: unknown) => err,
    );
    clearTimeout(timer);
    t.not(e, undefined, `${f} was accepted`);
    t.true(isMilkyWayError(e), `${f}: not a coded error: ${String(e)}`);
    const code = (e as { code: string }).code;
    t.not(code, 'E_INTERNAL');
    t.true(codes.has(code), `${f}: ${code} is not in doc/errors-*.md`);
    t.log(`${f}: ${code}: ${(e as Error).message.slice(0, 160)}`);
  });
}

// Cross-checked against OpenSSL (3.0, through the openssl CLI and Node's X509Certificate), which
// nobody here wrote: where we refuse, OpenSSL either refuses too or reads something other than
// the file's bytes.
test('cross-check: OpenSSL refuses the trailing byte as DER and cannot decode the damaged extensions either', async (t) => {
  const trailing = join(DIR, 'cert-trailing-byte.der');
  const bytes = await readFile(trailing);
  // OpenSSL's DER parser: trailing data is an encoding error; without the byte it parses.
  const a = await execa('openssl', ['asn1parse', '-inform', 'DER', '-in', trailing], { reject: false });
  t.not(a.exitCode, 0);
  t.regex(`${a.stdout}${a.stderr}`, /Error in encoding/);
  const b = await execa('openssl', ['asn1parse', '-inform', 'DER'], {
    input: bytes.subarray(0, -1),
    reject: false,
  });
  t.is(b.exitCode, 0, b.stderr);
  // X509Certificate takes the certificate before the byte: the file's SHA-256 is not the
  // certificate's fingerprint, the one-certificate-many-fingerprints hazard strict DER closes.
  const x = new X509Certificate(bytes);
  const fpr = (d: Uint8Array) => createHash('sha256').update(d).digest('hex');
  t.is(x.fingerprint256.replace(/:/g, '').toLowerCase(), fpr(bytes.subarray(0, -1)));
  t.not(x.fingerprint256.replace(/:/g, '').toLowerCase(), fpr(bytes));
  // The damaged extensions: OpenSSL prints their raw bytes instead of a value it understood.
  for (const [f, ext, good] of [
    ['cert-key-usage-unused-bits-9.der', 'keyUsage', /Digital Signature/],
    ['cert-basic-constraints-not-a-sequence.der', 'basicConstraints', /CA:/],
  ] as const) {
    const r = await execa('openssl', ['x509', '-inform', 'DER', '-in', join(DIR, f), '-noout', '-ext', ext]);
    t.notRegex(r.stdout, good, `${f}: ${r.stdout}`);
  }
  const ok = await execa('openssl', [
    'x509',
    '-inform',
    'DER',
    '-in',
    trailing,
    '-noout',
    '-ext',
    'keyUsage,basicConstraints',
  ]);
  t.regex(ok.stdout, /Digital Signature/);
  t.regex(ok.stdout, /CA:FALSE/);
});
