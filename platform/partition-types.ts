// MilkyWayLinux's own GPT partition type GUIDs (doc/gpt.md), for the partitions the
// Discoverable Partitions Specification has no type for (formats/gpt has the DPS table).
// Here, beside the disk layout that uses them, so the agent can read them without the builder.
import { DPS } from '../formats/index.ts';

/**
 * MilkyWay's own type GUIDs (random v4, minted once; never change them). The CoreOS
 * verity signature gets its own type because it holds an ML-DSA envelope, not the
 * PKCS#7 signature systemd expects behind DPS root-verity-sig.
 */
export const MILKYWAY = {
  certificates: 'cc673e07-3c94-4a19-b1fd-1976b0e08443',
  secureConfig: '6222f2e6-f406-47bc-ba62-fa57bdf8d254',
  secureDynamicConfig: '783e1a6a-e14f-4264-9fea-abadd5b3b9ee',
  dynamicConfig: 'f71b577a-c06c-4bfe-aeac-42894697bd6a',
  layers: 'c0b3fc30-e661-4f83-b396-bc0099c9de4d',
  data: '7cb9e8a5-83b2-4e54-8857-8ee53cb31676',
  peerIdentity: 'a49d294f-7b55-4215-83b1-8b6e44779c84',
  coreosVeritySig: 'b011fff3-95a8-4252-a9b0-67daff4df7c2',
  /** Stage-2 boot slots boot-a / boot-b (bootchain/, doc/stage2-format.md). */
  boot: '11fd435a-de3c-4ff1-9fcc-82adb8ee99de',
} as const;

/** Every type GUID a MilkyWayLinux disk uses, by name (`esp`, `rootVerity`, `certificates`, …). */
export const PARTITION_TYPES: Readonly<Record<string, string>> = { ...DPS, ...MILKYWAY };
