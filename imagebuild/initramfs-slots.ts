// The A/B slot choice of /init with `mway.slots=gpt` (doc/boot.md, "A/B slots"): the boot
// chain's stage-1 rules (bootchain/slot.ts, Bottlerocket's gptprio) in busybox ash, for as
// long as today's boot has no stage 1 of its own. The slot bits are ChromeOS's (priority
// 48–51, tries 52–55, successful 56) on each slot's CoreOS data partition (update/): pick the
// highest slot that will boot (a on a tie); a trial slot (not successful) has its tries
// decremented in both GPT copies — backup first, each array and header CRC recomputed with
// busybox crc32, synced — before anything of it is read, so any failure after this point
// counts; a trial boot fails with `reboot`, so the next boot falls back. The chosen slot's root
// hash is read back from its partition GUIDs (the DPS pairing) and left in /run/mway.roothash
// for the agent; dm-verity then checks every block against it.
//
// Trust: the GUIDs are not signed. The UKI's own `mway.roothash` pins slot A only; a slot the
// GUIDs name was verified by the agent against the vendor's signature when it was written,
// but an attacker with the disk offline could write one too. The boot chain's stage 1 closes
// that (ML-DSA-verified stage 2 per slot); doc/threat-model.md says so.
import { layoutRow } from '../platform/index.ts';

/** The shell function `choose_slot`, which sets `roothash` and `slot` (or fails the boot). */
export function slotChoiceScript(o: { rootType: string; verityType: string }): string {
  return `
# --- A/B slot choice (mway.slots=gpt), imagebuild/initramfs-slots.ts ---------------------
# Raw bytes from hex at byte OFFSET of DEV.
puthex() { printf "$(echo "$3" | sed 's/../\\\\x&/g')" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null; }
# crc32 of hex bytes, as the 8 hex digits GPT stores (little-endian).
lecrc() { local c; c=$(printf "$(echo "$1" | sed 's/../\\\\x&/g')" | crc32); echo "\${c:6:2}\${c:4:2}\${c:2:2}\${c:0:2}"; }
hexle32() { local x; x=$(printf %08x "$1"); echo "\${x:6:2}\${x:4:2}\${x:2:2}\${x:0:2}"; }
# GUID bytes as stored <-> the root-hash half they spell (the mixed-endian swap is its own inverse).
guidhex() { local e="$1"; echo "\${e:6:2}\${e:4:2}\${e:2:2}\${e:0:2}\${e:10:2}\${e:8:2}\${e:14:2}\${e:12:2}\${e:16:16}"; }

# Sets byte 54 (priority | tries << 4) of entry IDX in the GPT copy whose header is at LBA.
set_entry_byte() {
  local dev="$1" bs="$2" hlba="$3" idx="$4" val="$5" hdr hsize elba n esz len ents
  hdr=$(hexblocks "$dev" "$bs" "$hlba" 1)
  [ "\${hdr:0:16}" = 4546492050415254 ] || return 1
  hsize=$(le "\${hdr:24:8}")
  elba=$(le "\${hdr:144:16}")
  n=$(le "\${hdr:160:8}")
  esz=$(le "\${hdr:168:8}")
  len=$((n * esz))
  puthex "$dev" $((elba * bs + (idx - 1) * esz + 54)) "$val" || return 1
  sync
  ents=$(dd if="$dev" bs="$bs" skip="$elba" count=$(( (len + bs - 1) / bs )) 2>/dev/null | head -c "$len" | od -A n -v -t x1 | tr -d ' \\n')
  hdr="\${hdr:0:32}00000000\${hdr:40:136}$(lecrc "$ents")\${hdr:184}"
  hdr="\${hdr:0:$((hsize * 2))}"
  hdr="\${hdr:0:32}$(lecrc "$hdr")\${hdr:40}"
  puthex "$dev" $((hlba * bs)) "$hdr" || return 1
  sync
}

slot=
# choose_slot_on DEV BS: 0 with roothash and slot set when DEV holds CoreOS slots, else 1.
choose_slot_on() {
  local dev="$1" bs="$2" hdr lba n esz ents i e ra rb va vb alt
    hdr=$(hexblocks "$dev" "$bs" 1 1)
    [ "\${hdr:0:16}" = 4546492050415254 ] || return 1
    alt=$(le "\${hdr:64:16}")
    lba=$(le "\${hdr:144:16}")
    n=$(le "\${hdr:160:8}")
    esz=$(le "\${hdr:168:8}")
    [ "$esz" -ge 128 ] && [ "$n" -le 1024 ] || return 1
    ents=$(hexblocks "$dev" "$bs" "$lba" $(( (n * esz + bs - 1) / bs )))
    ra= ; rb= ; va= ; vb=
    i=0
    while [ "$i" -lt "$n" ]; do
      e="\${ents:$((i * esz * 2)):$((esz * 2))}"
      if [ "\${e:0:32}" = ${o.rootType} ]; then [ -z "$ra" ] && ra="$((i + 1)):$e" || { [ -z "$rb" ] && rb="$((i + 1)):$e"; }; fi
      if [ "\${e:0:32}" = ${o.verityType} ]; then [ -z "$va" ] && va="$e" || { [ -z "$vb" ] && vb="$e"; }; fi
      i=$((i + 1))
    done
    [ -n "$ra" ] && [ -n "$va" ] || return 1
    # priority, tries, successful of a slot from its entry's attribute bytes 54 and 55.
    local pa ta sa pb tb sb ea eb
    ea="\${ra#*:}"; eb="\${rb#*:}"
    pa=$((0x\${ea:109:1})); ta=$((0x\${ea:108:1})); sa=$((0x\${ea:110:2} & 1))
    pb=0; tb=0; sb=0
    [ -n "$rb" ] && [ -n "$vb" ] && { pb=$((0x\${eb:109:1})); tb=$((0x\${eb:108:1})); sb=$((0x\${eb:110:2} & 1)); }
    # A disk built before slot bits: A is the known-good slot.
    [ "$pa$ta$sa$pb$tb$sb" = 000000 ] && { pa=2; sa=1; }
    local wa=0 wb=0 pick
    [ "$pa" -gt 0 ] && { [ "$ta" -gt 0 ] || [ "$sa" -eq 1 ]; } && wa=1
    [ "$pb" -gt 0 ] && { [ "$tb" -gt 0 ] || [ "$sb" -eq 1 ]; } && wb=1
    if [ "$wa" = 1 ] && { [ "$wb" = 0 ] || [ "$pa" -ge "$pb" ]; }; then pick=a
    elif [ "$wb" = 1 ]; then pick=b
    else echo "MILKYWAY: no bootable slot (a: priority $pa tries $ta successful $sa; b: priority $pb tries $tb successful $sb)"; echo "MILKYWAY: boot stopped (fail closed)"; onfail=poweroff; stop
    fi
    local idx p t s ent ve
    if [ "$pick" = a ]; then idx="\${ra%%:*}"; p=$pa; t=$ta; s=$sa; ent="$ea"; ve="$va"
    else idx="\${rb%%:*}"; p=$pb; t=$tb; s=$sb; ent="$eb"; ve="$vb"; fi
    if [ "$s" -eq 0 ]; then
      # A trial: its try is used up on disk before it is read (backup copy, then primary).
      set_entry_byte "$dev" "$bs" "$alt" "$idx" "$(printf %x%x $((t - 1)) "$p")" || fail "cannot write slot $pick's tries to the backup GPT"
      set_entry_byte "$dev" "$bs" 1 "$idx" "$(printf %x%x $((t - 1)) "$p")" || fail "cannot write slot $pick's tries to the primary GPT"
      onfail=reboot
      say "slot $pick (trial, tries $t→$((t - 1)))"
    else
      say "slot $pick"
    fi
    slot=$pick
    roothash="$(guidhex "\${ent:32:32}")$(guidhex "\${ve:32:32}")"
    return 0
}

choose_slot() {
  local sys dev bs
  for sys in /sys/class/block/*; do
    dev="\${sys##*/}"
    [ -e "$sys/partition" ] && continue
    case "$dev" in loop*|ram*|dm-*|sr*|zram*) continue ;; esac
    bs=$(cat "$sys/queue/logical_block_size" 2>/dev/null || echo 512)
    if choose_slot_on "/dev/$dev" "$bs"; then
      # The agent reads which CoreOS runs from here (the UKI's mway.roothash pins slot a only).
      echo "$roothash" > /run/mway.roothash
      echo "$slot" > /run/mway.slot
      return 0
    fi
  done
  return 1
}
`;
}

/** The layout's CoreOS types, as /init compares them. */
export const slotTypes = () => ({
  root: layoutRow('coreos-a').type,
  verity: layoutRow('coreos-a-verity').type,
});
