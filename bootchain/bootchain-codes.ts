// The codes of BootchainError (bootchain/bootchain-error.ts): the table types its `code` and
// generates doc/errors-bootchain.md (npm run docs:errors). The C stage 1 (bootchain/verifier/)
// prints the same names in its `MILKYWAY: …` lines, so a console line and a TS error agree.
import { defineCodes } from '../common/index.ts';

export const BOOTCHAIN_CODES = defineCodes(
  {
    part: 'bootchain',
    source: 'bootchain/bootchain-codes.ts',
    errorClasses: ['BootchainError'],
    title: 'bootchain/ error codes',
    intro: `Every failure in \`bootchain/\` is a \`BootchainError\` (bootchain/bootchain-error.ts) with one
of these codes. The stage-2 descriptor and the stage-1 config are checked the same way by the
TypeScript reader (\`mway-image verify\`) and by the C verifier that runs in stage 1
(\`mway-stage1\`), which prints \`MILKYWAY: stage 2 slot X refused: CODE: …\` on the console and
then tries the other slot or stops the boot (doc/boot.md). keys/ errors (\`E_SIG_INVALID\`,
\`E_ROLE_MAY_NOT_SIGN\`, …), formats/ errors (\`E_GPT_*\`) and common/'s tool errors
(\`E_TOOL_MISSING\` naming the Debian package) pass through unchanged.`,
  },
  {
    'Stage-2 descriptor': {
      E_DESC_TRUNCATED:
        'the boot partition (or file) is shorter than the descriptor, its signature or a part it names',
      E_DESC_MAGIC: 'no `MWSTAGE2` magic at the start of the boot partition',
      E_DESC_VERSION: 'a descriptor format version this stage 1 does not know',
      E_DESC_ALGORITHM: 'the algorithm field is not ML-DSA-44, -65 or -87',
      E_DESC_LAYOUT:
        'an offset or size is not the one the fixed layout gives (kernel at 12 KiB, initramfs on the next 4 KiB boundary), a size is zero or over its cap, or a part runs past the partition',
      E_DESC_FIELD:
        'a text field (name, version, command line) is not printable ASCII, has bytes after its NUL, or a reserved byte is not zero',
      E_DESC_CMDLINE:
        'the command line lacks `mway.roothash=` equal to the descriptor root hash, or sets a parameter stage 1 owns (`mway.certs=`, `mway.slot=`)',
      E_DESC_KEY_UNPINNED: 'the descriptor names a signer key that stage 1 does not pin',
      E_DESC_SIGNATURE:
        'the ML-DSA signature (context `milkyway/v1/stage2`) does not verify under the pinned key',
      E_DESC_ROLLBACK: "the descriptor's rollback index is below stage 1's floor",
      E_DESC_KERNEL_DIGEST: "the kernel's size or sha256 is not the one the descriptor signs",
      E_DESC_INITRD_DIGEST: "the initramfs's size or sha256 is not the one the descriptor signs",
      E_DESC_INPUT: 'bad input to the descriptor writer (a field too long, a root hash not 64 hex digits)',
    },
    'Stage-1 config': {
      E_STAGE1_CONFIG:
        'the stage-1 config is not the fixed layout (magic, version, size, key count, padding)',
      E_STAGE1_SIGNATURE:
        "the stage-1 config's user signature (type `stage1`) does not verify or is not a user's",
      E_STAGE1_KEY: 'a vendor certificate to pin does not chain to the vendor root, or may not sign `stage2`',
    },
    'Boot slots': {
      E_SLOT_MISSING: 'the disk has no `boot-a` partition of the MilkyWay boot type',
      E_SLOT_NONE: 'no slot is bootable (priority 0, or no tries left and not marked successful)',
      E_SLOT_BAD: 'bad slot arguments: not a or b, or a priority/tries value outside 0–15',
    },
    'Secure Boot': {
      E_SB_KEYS: 'a Secure Boot key or certificate file is missing or not an RSA key / X.509 certificate',
      E_SB_SIGN:
        'sbsign failed, its signer certificate cannot be read, or its output does not verify with sbverify',
      E_SB_NOT_SIGNED:
        'the PE image has no Authenticode signature, or none that verifies under the given certificate',
      E_SB_PE: 'the file is not a PE32+ image this code can read, or its certificate table is not at its end',
      E_SB_UNSIGNED_MISMATCH: 'the signed image is not exactly the unsigned one plus a certificate table',
      E_SB_ENROLL: 'making the enrollment medium or enrolling keys in a UEFI variable store failed',
    },
    'Stage 1 on the console (printed by mway-stage1, never thrown in TypeScript)': {
      E_KEXEC_REFUSED:
        "kexec_file_load refused the verified stage-2 kernel: under Secure Boot, it carries no Authenticode signature by a key in db (the vendor's kexec key is not enrolled, or the kernel is unsigned)",
      E_GPT_WRITE:
        "stage 1 could not write a slot's new tries or priority to both GPT copies (that trial slot is not booted)",
    },
    'Verifier build': {
      E_VERIFIER_BUILD:
        'compiling the C stage-1 verifier failed (gcc, libc6-dev: scripts/setup.sh installs them)',
      E_VERIFIER_SOURCES: "PQClean's ML-DSA sources are not where the npm package pqclean puts them",
    },
  },
);

export type BootchainCode = keyof typeof BOOTCHAIN_CODES.codes;
