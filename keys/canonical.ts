// Canonical bytes of JSON values: RFC 8785 (JSON Canonicalization Scheme) via `canonicalize`.
import canonicalize from 'canonicalize';
import { KeysError } from './errors.ts';

export function canonicalJson(value: unknown): Uint8Array {
  let text: string | undefined;
  try {
    text = canonicalize(value);
  } catch (e) {
    throw new KeysError('E_CANONICAL', `Value cannot be canonicalized (RFC 8785): ${(e as Error).message}`);
  }
  if (text === undefined)
    throw new KeysError('E_CANONICAL', 'Value cannot be canonicalized (RFC 8785): undefined');
  return new TextEncoder().encode(text);
}
