// Reproducible verity salt and UUID from a seed and a label, in the spirit of
// systemd-repart --seed: HMAC-SHA256(seed, purpose ‖ NUL ‖ label).
import { createHmac } from 'node:crypto';
import { asUuidV4, uuidFromBytes } from '../guid.ts';

function derive(seed: string | Uint8Array, purpose: string, label: string): Uint8Array {
  return new Uint8Array(createHmac('sha256', seed).update(`milkyway/v1/${purpose}\0${label}`).digest());
}

/** 32-byte salt for the verity tree of `label`. */
export function deriveVeritySalt(seed: string | Uint8Array, label: string): Uint8Array {
  return derive(seed, 'verity-salt', label);
}

/** Version-4 UUID for the verity superblock of `label`. */
export function deriveVerityUuid(seed: string | Uint8Array, label: string): string {
  return uuidFromBytes(asUuidV4(derive(seed, 'verity-uuid', label)));
}

/** Version-4 UUID for anything else that must be stable across builds (partitions, file systems). */
export function deriveUuid(seed: string | Uint8Array, purpose: string, label: string): string {
  return uuidFromBytes(asUuidV4(derive(seed, purpose, label)));
}
