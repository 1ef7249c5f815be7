// Object identifiers of the MilkyWay certificate profile (doc/certificate-profile.md).
// The arc 2.25.<uuid> is a UUID-derived OID (ITU-T X.667), minted once for MilkyWay.

/** MilkyWay's own arc: 2.25 + decimal of UUID 446e5a4e-...; minted 2026-11-22. */
export const MILKYWAY_ARC = '2.25.90957865870926679367861112809361315491';
/** UTF8String: the certificate's role (vendor-root, vendor, user-root, user, operator, peer, broker). */
export const OID_ROLE = `${MILKYWAY_ARC}.1`;
/** UTF8String holding RFC 8785 JSON {"groups":[...],"actions":[...]}: an operator's scope. */
export const OID_SCOPE = `${MILKYWAY_ARC}.2`;
/** OCTET STRING: the peer's raw ML-KEM-768 public key (FIPS 203 encoding, 1184 bytes). */
export const OID_KEM_KEY = `${MILKYWAY_ARC}.3`;

/** NIST algorithm OIDs (CSOR, 2.16.840.1.101.3.4.3.x). */
export const OID_ALGORITHMS: Record<string, string> = {
  '2.16.840.1.101.3.4.3.17': 'ml-dsa-44',
  '2.16.840.1.101.3.4.3.18': 'ml-dsa-65',
  '2.16.840.1.101.3.4.3.19': 'ml-dsa-87',
  '2.16.840.1.101.3.4.3.20': 'slh-dsa-sha2-128s',
};

export const OID_BASIC_CONSTRAINTS = '2.5.29.19';
export const OID_KEY_USAGE = '2.5.29.15';
export const OID_EXT_KEY_USAGE = '2.5.29.37';
export const OID_SAN = '2.5.29.17';
export const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
export const EKU_CODE_SIGNING = '1.3.6.1.5.5.7.3.3';

/** URI form of a peer id in SubjectAltName. */
export const PEER_URI_PREFIX = 'milkyway:peer:';
