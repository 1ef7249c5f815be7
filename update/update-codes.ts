// The codes of UpdateError (update/update-error.ts): the table types its `code` and
// generates doc/errors-update.md (npm run docs:errors).
import { defineCodes } from '../common/index.ts';

export const UPDATE_CODES = defineCodes(
  {
    part: 'update',
    source: 'update/update-codes.ts',
    errorClasses: ['UpdateError'],
    title: 'update/ error codes',
    intro: `Every refusal of an A/B CoreOS update is an \`UpdateError\` (update/update-error.ts) with one of
these stable codes: the bundle checks (doc/update-bundle.md) that \`mway-image bundle verify\` and
the agent make before anything is written, the slot state on the GPT (doc/how-to-update.md) and
the health gate. \`mway-image\` prints \`mway-image: CODE: message\` and exits 1; a peer answers
the \`coreos.update\` command with the code. The keys/ error behind a refused signature
(\`E_SIG_INVALID\`, \`E_CERT_UNTRUSTED\`, \`E_CERT_EXPIRED\`, \`E_CERT_REVOKED\`, …) is kept as the
\`cause\`.`,
  },
  {
    'Update bundle': {
      E_BUNDLE_READ: 'the bundle file cannot be opened or read',
      E_BUNDLE_TRUNCATED:
        'the bundle ends before a member or the end-of-archive blocks it announces (a cut download)',
      E_BUNDLE_MALFORMED:
        'the bundle is not the strict ustar of doc/update-bundle.md: a missing, extra or reordered member, a bad header, trailing data, a manifest that is not canonical or not the schema (`details.field`)',
      E_BUNDLE_SIGNATURE:
        'the bundle envelope does not verify under the anchors (bad signature, untrusted or expired chain, revoked; the keys/ code is the `cause`)',
      E_BUNDLE_ROLE: {
        meaning: 'the bundle is signed by a certificate whose role may not sign updates (only `vendor` may)',
        fix: 'sign the bundle with the vendor key (`mway-image bundle create --keys DIR`)',
      },
      E_BUNDLE_DIGEST:
        "a member's bytes differ from the SHA-256 or size the signed manifest binds (`details.member`)",
      E_BUNDLE_VERITY:
        'the CoreOS erofs does not match the dm-verity tree and root hash the signed manifest names (`details.area`, `details.block`)',
      E_BUNDLE_COREOS_SIG:
        'the CoreOS verity signature inside the bundle does not verify, or names another root hash or version than the bundle',
      E_BUNDLE_STAGE2:
        "the bundle's stage-2 image does not verify as stage 1 would check it (descriptor signature by the bundle's signer, layout, kernel and initramfs digests; the bootchain/ code in `details.bootchainCode`), or names another root hash, version or rollback index than the manifest",
      E_BUNDLE_ARCH: 'the bundle is for another architecture than this machine',
      E_BUNDLE_NAME: 'the bundle carries another OS name than the running CoreOS',
      E_BUNDLE_DOWNGRADE: {
        meaning: 'the bundle version is not newer than the running CoreOS version',
        fix: 'build a bundle with a higher version; downgrades are refused (doc/threat-model.md, "Updates")',
      },
      E_DOWNGRADE_PERMIT: {
        meaning:
          'the downgrade permit given with a bundle not newer than the running version does not verify (not signed by a `user` certificate under the anchors, damaged, expired) or names another bundle, OS name or version',
        fix: 'sign a permit for this very bundle: `mway-image bundle permit BUNDLE --keys DIR -o FILE` (doc/update-bundle.md)',
      },
      E_BUNDLE_ROLLBACK: {
        meaning:
          'the bundle rollback index is below the floor the machine stored when it last marked an update good (a replayed old bundle)',
        fix: 'only a bundle with rollbackIndex ≥ the floor (`mway update status`) installs',
      },
      E_BUNDLE_SPACE:
        "CoreOS, its tree or its stage 2 in the bundle is bigger than the inactive slot's partitions",
    },
    'Slots and the health gate': {
      E_SLOT_DISK: 'the disk holding the slots cannot be found, opened or read as a MilkyWayLinux GPT',
      E_SLOT_STATE:
        'a slot value is out of range (priority and tries are 0 to 15), or the running slot cannot be told',
      E_SLOT_RUNNING: 'refused to write the slot that is running or the last known-good one',
      E_SLOT_BUSY: 'an update is already in progress (the inactive slot is armed for a trial boot)',
      E_UPDATE_STATE:
        'the update state file (rollback floor, last rollback) is damaged or of a newer version',
      E_UPDATE_CANCELLED:
        'the update was cancelled (`mway update --cancel`): an install stopped while writing the inactive slot, or a piece of a bundle whose earlier pieces this peer no longer holds (cancelled, or lost at a restart)',
    },
    'Rollouts (`mway update --batch`)': {
      E_UPDATE_GATE_FAILED:
        "the peer wrote the slot and rebooted, but its signed status shows the new slot failed its health gate or never reached it (stage 1 fell back); the message is the peer's reason",
      E_UPDATE_GATE_TIMEOUT: {
        meaning:
          'the peer wrote the slot, but no signed status with its health gate decided came within `--gate-timeout` (it did not come back, or is still in its gate)',
        fix: '`mway update status --peer P` shows where it is; give a longer `--gate-timeout` for slow machines',
      },
      E_ROLLOUT_STOPPED:
        'not started: earlier batches had more failed peers than `--max-fail` allows, so the rollout stopped before this peer',
    },
    Rollback: {
      E_ROLLBACK_NOT_BOOTABLE: {
        meaning:
          'refused to roll back: the other slot is empty, marked bad, or an armed update that never passed its health gate (only a known-good slot is a rollback target)',
        fix: 'an armed update is abandoned with `mway update --cancel`; `mway update status` shows each slot',
      },
      E_ROLLBACK_FLOOR: {
        meaning:
          "refused to roll back: the other slot's signed rollback index (its stage 2) is below the floor this machine raised when a newer slot passed its gate — stage 1 would refuse to boot it",
        fix: 'release a fixed version with a rollback index at least the floor instead',
      },
    },
  },
);

export type UpdateCode = keyof typeof UPDATE_CODES.codes;
