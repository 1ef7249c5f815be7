// Makes asn1js render OID arcs above 2^53 in decimal. asn1js prints such arcs as `{hex}`,
// which @peculiar/x509 then re-encodes as a truncated OID; MilkyWay's arc is a UUID OID
// (2.25.<128-bit>, ITU-T X.667), so without this the role extension would be lost on issuance.
import * as asn1js from 'asn1js';

interface SidBlock {
  isHexOnly: boolean;
  isFirstSid: boolean;
  valueHexView: Uint8Array;
  toString(): string;
}
interface OidValueBlock {
  value: SidBlock[];
  toString(): string;
}

const sample = new asn1js.ObjectIdentifier({ value: '1.2' }).valueBlock as unknown as OidValueBlock;
const proto = Object.getPrototypeOf(sample) as OidValueBlock & { __milkywayPatched?: boolean };
if (proto.__milkywayPatched !== true) {
  const original = proto.toString;
  proto.toString = function (this: OidValueBlock): string {
    if (!this.value.some((s) => s.isHexOnly && !s.isFirstSid)) return original.call(this);
    return this.value
      .map((s) => {
        if (!s.isHexOnly) return s.toString();
        if (s.isFirstSid) throw new Error('OID first arc above 2^53 is not supported');
        // valueHexView holds the 7-bit groups of the arc, most significant first.
        let n = 0n;
        for (const b of s.valueHexView) n = (n << 7n) | BigInt(b & 0x7f);
        return n.toString();
      })
      .join('.');
  };
  proto.__milkywayPatched = true;
}
