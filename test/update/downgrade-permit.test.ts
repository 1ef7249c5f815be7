// The downgrade permit (update/downgrade-permit.ts) on its own: only a `user` certificate may
// sign one (keys/role-policy.ts), it binds the bundle's digest, name and version, it expires,
// and a damaged one is refused with E_DOWNGRADE_PERMIT naming the check.
import { createHash } from 'node:crypto';
import test from 'ava';
import { signEnvelope } from '../../keys/index.ts';
import { signDowngradePermit, UpdateError, verifyDowngradePermit } from '../../update/index.ts';
import { tempDir } from '../helpers.ts';
import { devKeys } from './_slot-disk.ts';

const sha = createHash('sha256').update('bundle').digest('hex');
const manifest = { name: 'milkyway', version: '1.5' };

test('a user-signed permit verifies for its bundle only, until it expires; no other role may sign one', async (t) => {
  const keys = await devKeys(await tempDir(t));
  const anchors = [keys.userRoot, keys.vendorRoot];
  // Certificates made just now: the permit is signed a second later and checked then.
  const now = new Date(Date.now() + 1000);
  const expiry = new Date(now.getTime() + 2 * 86_400_000).toISOString().replace('.', '\\.');
  const permit = signDowngradePermit({
    manifest,
    bundleSha256: sha,
    days: 2,
    key: keys.user.key,
    chain: keys.user.chain,
    now,
  });
  t.is(verifyDowngradePermit(permit, { anchors, manifest, bundleSha256: sha, at: now }), '1.5');
  const refused = (p: unknown, o: Partial<Parameters<typeof verifyDowngradePermit>[1]>, re: RegExp) => {
    const e = t.throws(
      () => verifyDowngradePermit(p, { anchors, manifest, bundleSha256: sha, at: now, ...o }),
      {
        instanceOf: UpdateError,
      },
    );
    t.is(e?.code, 'E_DOWNGRADE_PERMIT');
    t.regex(e?.message ?? '', re);
  };
  refused(
    permit,
    { bundleSha256: 'a'.repeat(64) },
    /it is for milkyway 1\.5 \(bundle [0-9a-f]{12}\), not milkyway 1\.5 \(bundle aaaaaaaaaaaa\)/,
  );
  refused(permit, { manifest: { name: 'milkyway', version: '1.4' } }, /not milkyway 1\.4/);
  refused(permit, { at: new Date(now.getTime() + 2 * 86_400_000 + 1) }, new RegExp(`expired at ${expiry}`));
  refused(permit, { anchors: [keys.vendorRoot] }, /E_CERT_UNTRUSTED|E_CHAIN/);
  // The vendor signs bundles, never the permission to go back: keys/ refuses to sign it.
  t.throws(
    () =>
      signEnvelope({
        type: 'downgrade',
        payload: permit.payload,
        key: keys.vendor.key,
        chain: keys.vendor.chain,
      }),
    { code: 'E_ROLE_MAY_NOT_SIGN' },
  );
  refused(
    { ...permit, payload: { ...(permit.payload as object), version: '9.9' } },
    {},
    /E_SIG_INVALID|signature/i,
  );
  refused('not an envelope', {}, /Downgrade permit refused/);
  t.throws(
    () =>
      signDowngradePermit({
        manifest,
        bundleSha256: sha,
        days: 31,
        key: keys.user.key,
        chain: keys.user.chain,
      }),
    {
      instanceOf: RangeError,
    },
  );
});
