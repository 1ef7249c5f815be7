// The codes of AgentError (agent/core/agent-error.ts): the table types its `code`, gives
// the exit codes of `milkyway-agent ctl` and generates doc/errors-agent.md (npm run docs:errors).
import { defineCodes } from '../../common/index.ts';

export const AGENT_CODES = defineCodes(
  {
    part: 'agent',
    source: 'agent/core/agent-codes.ts',
    errorClasses: ['AgentError'],
    title: 'agent/ error codes',
    intro: `Every failure in \`agent/\` is an \`AgentError\` (agent/core/agent-error.ts) with one of these
stable codes. \`milkyway-agent\` prints \`milkyway-agent: CODE: message\` and exits 1; over
D-Bus the code becomes the error name \`org.milkyway.Agent1.Error.CODE\` (the D-Bus layer's
own \`E_DBUS_…\` codes are in [agent-dbus.md](agent-dbus.md)). Failures of \`keys/\` and
\`layers/\` keep their own codes: a refused layer reports the layers/ or keys/ code that
failed in \`LayerInfo.error.code\`.`,
  },
  {
    Agent: {
      E_CONFIG_READ: 'the agent config file cannot be read',
      E_CONFIG_INVALID:
        'the agent config is not JSON, or a key is unknown or has a bad value (the message names the key, e.g. `logs.fileBytes`)',
      E_MOUNT: "a `mounts` entry's PARTLABEL matches no partition (logged; the boot goes on)",
      E_TRUST_ANCHORS:
        'the certificate directory cannot be read or holds no self-signed vendor-root / user-root certificate',
      E_TRUST_CRL:
        'a `*.crl` file of the certificate partition cannot be used (its own code in `details.problems`) and there is no last good CRL list to keep: the agent starts no service rather than run without revocations',
      E_SECURE_CONFIG:
        'the secure config cannot be read, does not verify (details.check holds the keys/ code: `E_SIG_INVALID`, `E_CERT_UNTRUSTED`, `E_ROLE_MAY_NOT_SIGN`, …) or its payload is invalid; the agent starts no service',
      E_LAYERS_UNAVAILABLE: 'layers/ could not be loaded',
      E_LAYER_NO_VERITY:
        'the kernel has no device-mapper and `allowUserspaceVerity` is false: the layer is refused',
      E_LAYER_NOT_ALLOWED: "the layer is not in the secure config's `allowLayers`",
      E_LAYER_NAME: '`<name>.mwl` holds a layer of another name',
      E_LAYER_MANIFEST: 'the manifest lacks something the agent needs (the verity root hash)',
      E_LAYER_ACTIVATE: 'losetup / veritysetup open / mount of the payload or the app overlay failed',
      E_LAYER_DEPENDENCY: 'an app needs a library layer that is not active',
      E_LAYER_UNMOUNT:
        'removing a layer whose root or payload mount stays busy (a process inside it): nothing is removed, its services are started again',
      E_LAYER_IN_USE: 'removing a library that an active app uses, directly or through another library',
      E_LAYER_UNKNOWN: 'no layer (or group, for putSecrets) of that name',
      E_SERVICE_SPEC:
        'no longer raised: layers/ refuses a service entry the agent cannot run as `E_MANIFEST_INVALID` before the agent sees it (listed so the code is never reused)',
      E_SERVICE_UNKNOWN: 'no service of that name',
      E_SERVICE_EXISTS: 'two services with one name',
      E_SERVICE_CYCLE: "the services' `requires` form a cycle",
      E_SERVICE_FAILED:
        'StartService: the service failed (start limit, readiness timeout, exited) — the message says why',
      E_NOTIFY_SOCKET: 'the sd_notify socket could not be bound',
      E_SHUTTING_DOWN: 'a control call arrived during shutdown',
      E_BAD_NAME: 'an invalid layer, group or secret name',
      E_UID_TABLE: '`data/uids.json` is unreadable, or the dynamic uid range is exhausted',
      E_TOOL_MISSING:
        'bwrap, setpriv, perl, losetup, veritysetup, mount … missing (the message names the Debian package)',
    },
    SELinux: {
      E_SELINUX_LOAD:
        'the kernel refused a policy the agent compiled (a layer install or remove): the running policy stays, the install is refused',
      E_SELINUX_LABEL:
        'chcon could not label a folder of the data partition (the message names it and says why)',
      E_SELINUX_ACCESS:
        "the agent's access check through /sys/fs/selinux/access failed (the class or permission is not in the loaded policy)",
    },
    'Module actions (agent/modules)': {
      E_MODULE_UNKNOWN: 'no active module layer of that name on this peer',
      E_MODULE_REFUSED:
        'the module layer is installed but refused — a tampered or untrusted module (`details.code` is the check that failed, e.g. `E_SIG_INVALID`, `E_VERITY_MISMATCH`)',
      E_MODULE_DIGEST:
        'the command is bound to another manifest than the module installed here (`args.manifest`): the module changed since the operator looked',
      E_MODULE_ACTION_UNKNOWN: 'the module has no action of that name',
      E_MODULE_ARGS: "the arguments do not match the action's schema (`details.field` names the argument)",
      E_MODULE_DEVICE: 'a device the action declares does not exist on this peer',
      E_MODULE_TIMEOUT:
        'the action ran longer than its `timeoutSec` and was killed with everything it started',
      E_MODULE_OUTPUT_LIMIT: 'the action printed more than its `output.maxBytes` and was killed',
      E_MODULE_OUTPUT:
        "the action's stdout is not one UTF-8 JSON value, or does not match its `output.schema`",
      E_MODULE_EXIT:
        'the action exited non-zero; the signed result carries its exit status, stdout and the end of its stderr',
    },
    'cloud-init seed (agent/core/nocloud-*.ts)': {
      E_SEED_INVALID: {
        meaning:
          'a file of the cloud-init NoCloud seed (`meta-data`, `user-data`, `network-config`) is not what the agent reads: not YAML, user-data that is no `#cloud-config`, a bad hostname, address or broker (the message names the file and key); nothing of the seed is applied',
        fix: 'Fix the key named in the seed (doc/agent-config.md, "cloud-init seed") and reboot.',
      },
      E_SEED_VOLUME: {
        meaning:
          'the seed volume the config names cannot be read: no such device or file, neither FAT nor ISO 9660, not labelled cidata, or damaged (the formats/ code in `cause`); nothing of the seed is applied',
        fix: 'Attach a volume made with `genisoimage -volid cidata -joliet -rock` or `mkfs.vfat -n CIDATA` + `mcopy`.',
      },
    },
    'Fleet peer (agent/remote)': {
      E_LINK_CONFIG: {
        meaning:
          "the agent config's `control` section is invalid, names no trust anchor, or its certificate is not a peer certificate with a peer id",
        fix: 'Fix the key named.',
      },
    },
    'D-Bus layer': {
      E_DBUS_BAD_ARGUMENT: 'a name or path argument is malformed (the message quotes it)',
      E_DBUS_ACCESS_DENIED: {
        meaning:
          'the caller may not call this method (a control method: uid check or bus policy; any method: the SELinux policy)',
        exit: 4,
      },
      E_DBUS_UNREACHABLE: {
        meaning: '(client) no bus at the address, or no agent owns `org.milkyway.Agent1`',
        exit: 3,
      },
      E_DBUS_TIMEOUT: { meaning: '(client) the agent did not reply in time', exit: 3 },
      E_DBUS_CALL: '(client) the bus returned another D-Bus error (name in the message)',
      E_DBUS_REPLY: '(client) the reply was not the JSON document expected',
      E_DBUS_DAEMON: '`startBusDaemon` could not start `dbus-daemon`',
      E_INTERNAL: {
        meaning: "a bug in the agent while serving a call (details only in the agent's log)",
        exit: 70,
      },
    },
  },
);

export type AgentCode = keyof typeof AGENT_CODES.codes;
