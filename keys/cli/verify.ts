// `mway keys verify CERT --trust ANCHOR…`: exit 0 when the chain is valid, 1 with the failing check's code.
import { defineCommand } from 'citty';
import { commonArgs, failed, output, values } from '../../common/index.ts';
import { verifyChain } from '../chain.ts';
import { KeysError } from '../errors.ts';
import { ROLES, type Role } from '../types.ts';
import { loadAnchors, loadCert, loadCrls } from './shared.ts';

export default defineCommand({
  args: {
    ...commonArgs,
    cert: { type: 'positional', required: true, description: 'Certificate (leaf first, chain appended)' },
    trust: { type: 'string', repeatable: true, description: 'Trust anchor certificate (repeatable)' },
    crl: { type: 'string', repeatable: true, description: 'CRL file (repeatable)' },
    role: { type: 'string', description: 'Required role of the leaf' },
    at: { type: 'string', description: 'Verify at this ISO 8601 time instead of now' },
  },
  async run({ args }) {
    const chain = await loadCert(args.cert);
    const anchors = await loadAnchors(values(args.trust));
    const crls = await loadCrls(values(args.crl));
    const at = args.at === undefined ? undefined : new Date(args.at);
    if (at !== undefined && Number.isNaN(at.getTime()))
      throw new KeysError('E_USAGE', `--at ${args.at} is not an ISO 8601 time`);
    if (args.role !== undefined && !(ROLES as readonly string[]).includes(args.role)) {
      throw new KeysError('E_ROLE_UNKNOWN', `Unknown role ${args.role}`);
    }
    try {
      const leaf = verifyChain(chain, {
        anchors,
        crls,
        at,
        roles: args.role === undefined ? undefined : [args.role as Role],
      });
      output(
        args.json,
        { subject: leaf.subject, role: leaf.role, fingerprint: leaf.fingerprint },
        () => `valid: ${leaf.subject} (${leaf.role})`,
      );
      return 0;
    } catch (e) {
      if (!(e instanceof KeysError)) throw e;
      return failed(args.json, e, () => `invalid: ${e.code}: ${e.message}`);
    }
  },
});
