// A NATS user's credentials in NATS mode (doc/nats.md): an nkey seed file (the `SU…` line that
// nats-server's nkey users and the `nk` tool use), given by the agent's, the broker's or the
// operator's config. Only the public key (`U…`) goes into the servers' config, so the servers
// hold no secret that lets anyone connect as a peer. The connect options carry the user's own
// inbox prefix, which its permissions (nats-permissions.ts) allow it to subscribe to.
import { readFile } from 'node:fs/promises';
import type { Authenticator } from '@nats-io/transport-node';
import { errorMessage } from '../../common/index.ts';
import { ControlError } from './control-error.ts';
import { inboxPrefix, type NatsRole } from './nats-permissions.ts';

/** An nkey user seed: `SU`, then base32 (RFC 4648, no padding) of 1 + 32 + 2 bytes. */
const SEED_RE = /^SU[A-Z2-7]{56}$/;

export interface NatsAuthOptions {
  authenticator?: Authenticator;
  inboxPrefix: string;
}

/** Reads an nkey seed file; the error names the file and says what is wrong, never the seed. */
export async function readNkeySeed(file: string): Promise<Uint8Array> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ControlError('E_NATS_CREDENTIALS', `Cannot read NATS nkey seed ${file}: ${errorMessage(e)}`, {
      path: file,
      cause: e,
    });
  }
  const seed = text.trim();
  if (!SEED_RE.test(seed))
    throw new ControlError(
      'E_NATS_CREDENTIALS',
      `Cannot read NATS nkey seed ${file}: expected one line with a user seed (SU and 56 base32 characters)`,
      { path: file },
    );
  const { nkeys } = await import('@nats-io/transport-node');
  try {
    nkeys.fromSeed(new TextEncoder().encode(seed)); // checks the checksum and the prefix
  } catch (e) {
    throw new ControlError('E_NATS_CREDENTIALS', `Cannot read NATS nkey seed ${file}: ${errorMessage(e)}`, {
      path: file,
    });
  }
  return new TextEncoder().encode(seed);
}

/** The public key (`U…`) of an nkey seed, as nats-server's config names the user. */
export async function nkeyPublicKey(seed: Uint8Array): Promise<string> {
  const { nkeys } = await import('@nats-io/transport-node');
  return nkeys.fromSeed(seed).getPublicKey();
}

/** A new nkey user seed (for `milkywaysrvd nats-user`). */
export async function newNkeySeed(): Promise<Uint8Array> {
  const { nkeys } = await import('@nats-io/transport-node');
  return nkeys.createUser().getSeed();
}

/** The NATS client's connect options for `who`, authenticating with the seed in `seedFile` if given. */
export async function natsAuthOptions(who: NatsRole, seedFile: string | undefined): Promise<NatsAuthOptions> {
  const prefix = inboxPrefix(who);
  if (seedFile === undefined) return { inboxPrefix: prefix };
  const seed = await readNkeySeed(seedFile);
  const { nkeyAuthenticator } = await import('@nats-io/transport-node');
  return { authenticator: nkeyAuthenticator(seed), inboxPrefix: prefix };
}
