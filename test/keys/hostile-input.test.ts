// The hostile-input audit's keys/ findings (issue 12), each pinned by the command or call that
// showed it: damaged CRLs and PEM armor failed open, non-strict DER gave one certificate many
// fingerprints, unchecked bytes rode along in chains, missing files and FIFOs reached
// E_INTERNAL or hung, and `mway keys new` honoured a umask of 000.

import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import {
  canonicalJson,
  crlPem,
  issueCrl,
  parseCertificates,
  parseCrl,
  readCrls,
  serialize,
  signEnvelope,
  verifyChain,
  verifyEnvelope,
} from '../../keys/index.ts';
import { BINS, cli, jsonOut, tempDir } from '../helpers.ts';
import { codeOf, codeOfAsync, makePki } from './fixture.ts';

const pki = makePki();

function pemOf(der: Uint8Array, label = 'CERTIFICATE'): string {
  const b64 = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

test('a damaged BEGIN line is an error, not a silent skip to the next certificate of the bundle', async (t) => {
  const p = await pki;
  const bundle = await readFile(p.operator.certPath, 'utf8');
  for (const broken of [
    bundle.replace('-----BEGIN CERTIFICATE-----', '-----BEGIN CERTIFICATX-----'),
    bundle.replace('-----BEGIN CERTIFICATE-----', '----BEGIN CERTIFICATE-----'),
    bundle.replace('-----BEGIN CERTIFICATE-----', ''),
    bundle.replace(/-----END CERTIFICATE-----\n$/, ''),
    `${bundle}-----BEGIN CERTIFICATE-----\n`,
    `junk before\n${bundle}`,
    bundle.replace('-----BEGIN CERTIFICATE-----', '-----BEGIN X509 CRL-----'),
  ]) {
    t.is(
      codeOf(() => parseCertificates(broken)),
      'E_CERT_MALFORMED',
      broken.slice(0, 40),
    );
  }
  t.is(
    codeOf(() => parseCertificates('\n\n')),
    'E_CERT_MALFORMED',
  );
  t.is(parseCertificates(bundle).length, 2);
  // The command from the audit: it used to print `valid: root (user-root)`, exit 0.
  const d = await tempDir(t);
  const file = join(d, 'user.crt');
  await writeFile(file, bundle.replace('-----BEGIN CERTIFICATE-----', '-----BEGIN CERTIFICATX-----'));
  const r = await cli('mway', ['keys', 'verify', file, '--trust', p.root.certPath]);
  t.is(r.exitCode, 1, r.stdout + r.stderr);
  t.regex(r.stderr, /E_CERT_MALFORMED/);
});

test('a certificate with a trailing byte or a long-form length is refused: one certificate, one fingerprint', async (t) => {
  const p = await pki;
  const der = p.peer.cert.der;
  t.is(
    codeOf(() => parseCertificates(new Uint8Array([...der, 0]))),
    'E_CERT_MALFORMED',
  );
  t.is(
    codeOf(() => parseCertificates(pemOf(new Uint8Array([...der, 0])))),
    'E_CERT_MALFORMED',
  );
  // The outer SEQUENCE length 0x82 LL LL rewritten as 0x83 00 LL LL: same value, BER not DER.
  t.is(der[1], 0x82);
  const longer = new Uint8Array([0x30, 0x83, 0x00, ...der.subarray(2)]);
  t.is(
    codeOf(() => parseCertificates(longer)),
    'E_CERT_MALFORMED',
  );
});

test('a damaged CRL is an error, never dropped: truncated, broken armor, flipped issuer, flipped signature', async (t) => {
  const p = await pki;
  const crl = await issueCrl({
    issuerKey: p.root.key,
    issuerCert: p.root.cert,
    serials: [p.peer.cert.serial],
  });
  const pem = crlPem(crl);
  const d = await tempDir(t);
  const write = async (name: string, body: string | Uint8Array) => {
    const f = join(d, name);
    await writeFile(f, body);
    return f;
  };
  t.is(
    await codeOfAsync(async () => readCrls(await write('cut.crl', pem.slice(0, pem.length / 2)))),
    'E_CRL_MALFORMED',
  );
  t.is(
    await codeOfAsync(async () =>
      readCrls(await write('armor.crl', pem.replace('BEGIN X509', 'BEGIN X5O9'))),
    ),
    'E_CRL_MALFORMED',
  );
  t.is(await codeOfAsync(async () => readCrls(await write('empty.crl', ''))), 'E_CRL_MALFORMED');
  t.is(await codeOfAsync(async () => readCrls(await write('text.crl', 'hello\n'))), 'E_CRL_MALFORMED');
  // A flip in the issuer name ("root" → "rooT") still parses, and must not be skipped as "another CA's CRL".
  const i = Buffer.from(crl.der).indexOf(Buffer.from('root'));
  t.true(i > 0);
  const issuerFlip = new Uint8Array(crl.der);
  issuerFlip[i + 3] = (issuerFlip[i + 3] as number) ^ 0x20;
  const renamed = parseCrl(issuerFlip);
  t.is(
    codeOf(() => verifyChain(p.peer.chain, { anchors: [p.root.cert], crls: [renamed] })),
    'E_CRL_ISSUER_UNKNOWN',
  );
  const sigFlip = new Uint8Array(crl.der);
  sigFlip[sigFlip.length - 5] = (sigFlip[sigFlip.length - 5] as number) ^ 1;
  t.is(
    codeOf(() => verifyChain(p.operator.chain, { anchors: [p.root.cert], crls: [parseCrl(sigFlip)] })),
    'E_CRL_SIGNATURE',
  );
  // A CRL of another root next to ours: refused too, since its issuer is no anchor here.
  const vendorCrl = await issueCrl({
    issuerKey: p.vendorRoot.key,
    issuerCert: p.vendorRoot.cert,
    serials: [],
  });
  t.is(
    codeOf(() => verifyChain(p.operator.chain, { anchors: [p.root.cert], crls: [vendorCrl] })),
    'E_CRL_ISSUER_UNKNOWN',
  );
  t.is(
    verifyChain(p.operator.chain, { anchors: [p.root.cert, p.vendorRoot.cert], crls: [vendorCrl, crl] }).role,
    'operator',
  );
  // The audit's command: exit 0 with the revoked peer, before.
  for (const [name, body] of [
    ['cut2.crl', pem.slice(0, 300)],
    ['flip.crl', pemOf(issuerFlip, 'X509 CRL')],
  ] as const) {
    const r = await cli('mway', [
      'keys',
      'verify',
      p.peer.certPath,
      '--trust',
      p.root.certPath,
      '--crl',
      await write(name, body),
      '--json',
    ]);
    t.is(r.exitCode, 1, `${name}: ${r.stdout}${r.stderr}`);
    t.regex(r.stdout + r.stderr, /E_CRL_(MALFORMED|ISSUER_UNKNOWN)/);
  }
});

test('chain copies of the issuer must be the anchor byte for byte; an anchor with a broken self-signature is refused', async (t) => {
  const p = await pki;
  const [leaf, rootCopy] = p.peer.chain;
  t.truthy(leaf && rootCopy);
  // A flip inside the root copy's signature value still parses, and the path never used it.
  const der = new Uint8Array(p.root.cert.der);
  der[der.length - 40] = (der[der.length - 40] as number) ^ 1;
  const [damaged] = parseCertificates(der);
  t.truthy(damaged);
  if (leaf === undefined || damaged === undefined) return;
  t.is(
    codeOf(() => verifyChain([leaf, damaged], { anchors: [p.root.cert] })),
    'E_CHAIN_MISMATCH',
  );
  t.is(
    codeOf(() => verifyChain([leaf, p.root.cert, p.root.cert], { anchors: [p.root.cert] })),
    'E_CHAIN_MISMATCH',
  );
  t.is(
    codeOf(() => verifyChain([leaf], { anchors: [damaged] })),
    'E_CERT_SIGNATURE',
  );
  // The same through an envelope that carries its chain: the root copy is not unsigned padding.
  const env = signEnvelope({ type: 'status', payload: 1, key: p.peer.key, chain: p.peer.chain });
  const swapped = {
    ...env,
    signatures: env.signatures.map((s) => ({
      ...s,
      chain: [s.chain[0] as string, Buffer.from(der).toString('base64')],
    })),
  };
  t.is(
    codeOf(() => verifyEnvelope(serialize(swapped), { type: 'status', anchors: [p.root.cert] })),
    'E_CHAIN_MISMATCH',
  );
  t.is(verifyEnvelope(serialize(env), { type: 'status', anchors: [p.root.cert] }).payload, 1);
});

test('envelope bytes must be their canonical form', async (t) => {
  const p = await pki;
  const env = signEnvelope({
    type: 'status',
    payload: { s: '\u001f' },
    key: p.peer.key,
    chain: p.peer.chain,
  });
  const text = new TextDecoder().decode(canonicalJson(env));
  t.true(text.includes('\\u001f'));
  const o = { type: 'status' as const, anchors: [p.root.cert] };
  t.deepEqual(verifyEnvelope(text, o).payload, { s: '\u001f' });
  t.is(
    codeOf(() => verifyEnvelope(text.replace('\\u001f', '\\u001F'), o)),
    'E_ENVELOPE_NOT_CANONICAL',
  );
  t.is(
    codeOf(() => verifyEnvelope(`${text} `, o)),
    'E_ENVELOPE_NOT_CANONICAL',
  );
  t.is(
    codeOf(() => verifyEnvelope(JSON.stringify(env, null, 1), o)),
    'E_ENVELOPE_NOT_CANONICAL',
  );
});

test('keys CLIs: missing files, directories and FIFOs get their codes (no E_INTERNAL, no hang)', async (t) => {
  const p = await pki;
  const d = await tempDir(t);
  const fifo = join(d, 'fifo');
  await execa('mkfifo', [fifo]);
  const data = join(d, 'data.txt');
  await writeFile(data, 'hello');
  const sig = join(d, 'data.sig');
  const ok = await cli('mway', [
    'keys',
    'sign',
    data,
    '--key',
    p.operator.keyPath,
    '--cert',
    p.operator.certPath,
    '-o',
    sig,
  ]);
  t.is(ok.exitCode, 0, ok.stderr);
  const cases: [string[], string][] = [
    [['verify-sig', join(d, 'missing'), sig, '--trust', p.root.certPath], 'E_FILE_READ'],
    [['verify-sig', data, join(d, 'missing.sig'), '--trust', p.root.certPath], 'E_FILE_READ'],
    [['verify-sig', d, sig, '--trust', p.root.certPath], 'E_NOT_REGULAR_FILE'],
    [['verify-sig', data, fifo, '--trust', p.root.certPath], 'E_NOT_REGULAR_FILE'],
    [['verify-sig', fifo, sig, '--trust', p.root.certPath], 'E_NOT_REGULAR_FILE'],
    [['verify-sig', data, sig, '--trust', fifo], 'E_NOT_REGULAR_FILE'],
    [['verify-sig', data, sig, '--trust', p.root.certPath, '--crl', fifo], 'E_NOT_REGULAR_FILE'],
    [
      [
        'sign',
        join(d, 'missing'),
        '--key',
        p.operator.keyPath,
        '--cert',
        p.operator.certPath,
        '-o',
        join(d, 'x'),
      ],
      'E_FILE_READ',
    ],
    [
      ['sign', d, '--key', p.operator.keyPath, '--cert', p.operator.certPath, '-o', join(d, 'x')],
      'E_NOT_REGULAR_FILE',
    ],
    [
      ['sign', fifo, '--key', p.operator.keyPath, '--cert', p.operator.certPath, '-o', join(d, 'x')],
      'E_NOT_REGULAR_FILE',
    ],
    [['sign', data, '--key', fifo, '--cert', p.operator.certPath, '-o', join(d, 'x')], 'E_NOT_REGULAR_FILE'],
    [['sign', data, '--key', d, '--cert', p.operator.certPath, '-o', join(d, 'x')], 'E_NOT_REGULAR_FILE'],
    [['show', fifo], 'E_NOT_REGULAR_FILE'],
    [['show', d], 'E_NOT_REGULAR_FILE'],
    [['show', join(d, 'missing')], 'E_CERT_READ'],
  ];
  for (const [args, code] of cases) {
    const r = await cli('mway', ['keys', ...args], { timeout: 30_000 });
    t.is(r.exitCode, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    t.regex(r.stdout + r.stderr, new RegExp(code), args.join(' '));
    t.notRegex(r.stderr, /E_INTERNAL|this is a bug/, args.join(' '));
  }
  t.false(
    await stat(join(d, 'x')).then(
      () => true,
      () => false,
    ),
    'nothing written',
  );
  // A non-canonical signature file (pretty-printed by hand) is refused rather than partly covered.
  const pretty = join(d, 'pretty.sig');
  await writeFile(pretty, JSON.stringify(JSON.parse(await readFile(sig, 'utf8')), null, 2));
  const r = await cli('mway', ['keys', 'verify-sig', data, pretty, '--trust', p.root.certPath, '--json']);
  t.is(r.exitCode, 1);
  t.is(jsonOut(r.stdout).error.code, 'E_ENVELOPE_NOT_CANONICAL');
});

test('mway keys new makes its output directory 0700 under umask 000', async (t) => {
  const d = await tempDir(t);
  const out = join(d, 'new', 'keys');
  await mkdir(d, { recursive: true });
  const r = await execa(
    'sh',
    [
      '-c',
      'umask 000 && exec "$0" "$@"',
      process.execPath,
      BINS.mway,
      'keys',
      'new',
      '--role',
      'user-root',
      '--name',
      'r',
      '--out',
      out,
    ],
    {
      reject: false,
      timeout: 120_000,
    },
  );
  t.is(r.exitCode, 0, String(r.stderr));
  t.is((await stat(out)).mode & 0o777, 0o700);
  t.is((await stat(join(out, 'r.key'))).mode & 0o777, 0o600);
});

test('keys CLIs: an output that cannot be written is E_FILE_WRITE naming it, and nothing is left behind', async (t) => {
  const p = await pki;
  const d = await tempDir(t);
  const data = join(d, 'data.txt');
  await writeFile(data, 'hello');
  await mkdir(join(d, 'taken'));
  const file = join(d, 'file');
  await writeFile(file, 'x');
  const cases: [string[], string][] = [
    [
      ['sign', data, '--key', p.operator.keyPath, '--cert', p.operator.certPath, '-o', join(d, 'taken')],
      `Cannot write signature file ${join(d, 'taken')}: it is a directory`,
    ],
    [
      ['sign', data, '--key', p.operator.keyPath, '--cert', p.operator.certPath, '-o', join(file, 'x.sig')],
      `Cannot create directory ${file}: a file is in the way`,
    ],
    [
      ['new', '--role', 'user-root', '--name', 'r', '--out', join(file, 'keys')],
      `Cannot create output directory ${join(file, 'keys')}: a part of the path is a file, not a directory`,
    ],
    [
      [
        'revoke',
        '--issuer-key',
        p.root.keyPath,
        '--issuer-cert',
        p.root.certPath,
        '--cert',
        p.operator.certPath,
        '--crl',
        join(file, 'x.crl'),
      ],
      `Cannot create directory ${file}: a file is in the way`,
    ],
  ];
  for (const [args, message] of cases) {
    const r = await cli('mway', ['keys', ...args, '--json'], { timeout: 60_000 });
    t.is(r.exitCode, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    const { error } = jsonOut(r.stdout) as { error: { code: string; message: string } };
    t.is(error.code, 'E_FILE_WRITE', args.join(' '));
    t.is(error.message, message);
  }
  t.deepEqual((await readdir(d)).sort(), ['data.txt', 'file', 'taken']);
  t.deepEqual(await readdir(join(d, 'taken')), []);
});
