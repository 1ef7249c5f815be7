#!/usr/bin/env bash
# Packs the virt module (examples/modules/virt, issue 20) into a signed layer: the module's
# source with Debian's QEMU — qemu-system-x86_64 from qemu-system-x86, every shared library it
# loads and the dynamic loader, each from its own Debian package (fetched by `apt-get download`,
# which checks them against the archive's signed index) — at /virt/qemu/{bin,lib}, run through
# the packed loader so nothing of the base's libc is used; OVMF's 4M firmware at /virt/firmware;
# each package's copyright file at /virt/qemu/copyright/PKG.
#   scripts/pack-virt-module.sh --key KEY --cert CERT -o virt.mwl [--keep-root DIR]
# The versions are the build host's installed ones (the library list is read from its QEMU's
# ldd), so qemu-system-x86 and ovmf must be installed here. The .debs are kept in
# $MWAY_CACHE_DIR/debs (default: the checkout's .cache/debs). --keep-root copies the module root.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
key='' cert='' out='' keep=''
while [ $# -gt 0 ]; do
  case "$1" in
    --key) key="$2"; shift 2 ;;
    --cert) cert="$2"; shift 2 ;;
    -o|--out) out="$2"; shift 2 ;;
    --keep-root) keep="$2"; shift 2 ;;
    *) echo "pack-virt-module: unknown argument $1 (--key, --cert, -o, --keep-root)" >&2; exit 2 ;;
  esac
done
if [ -z "$key" ] || [ -z "$cert" ] || [ -z "$out" ]; then
  echo 'pack-virt-module: usage: pack-virt-module.sh --key KEY --cert CERT -o OUT.mwl [--keep-root DIR]' >&2
  exit 2
fi
for t in dpkg-deb:dpkg dpkg-query:dpkg apt-get:apt ldd:libc-bin qemu-system-x86_64:qemu-system-x86; do
  command -v "${t%%:*}" >/dev/null || { echo "pack-virt-module: ${t%%:*} is missing (Debian package ${t#*:})" >&2; exit 1; }
done
[ -f /usr/share/OVMF/OVMF_CODE_4M.fd ] || { echo 'pack-virt-module: OVMF is missing (Debian package ovmf)' >&2; exit 1; }
qemu="$(command -v qemu-system-x86_64)"
# Each library QEMU loads, and the Debian package that holds it (merged /usr: dpkg may know
# either spelling of the path).
libs="$(ldd "$qemu" | awk '/=> \//{print $3} $1 ~ /^\/.*ld-linux/{print $1}' | sort -u)"
pkgs="qemu-system-x86 qemu-system-common ovmf"
for l in $libs; do
  p=''
  for c in "$l" "$(readlink -f "$l")" "${l#/usr}" "$(readlink -f "$l" | sed 's#^/usr##')"; do
    p="$(dpkg -S "$c" 2>/dev/null | head -n 1 | cut -d: -f1)" && [ -n "$p" ] && break
  done
  [ -n "$p" ] || { echo "pack-virt-module: no Debian package holds $l" >&2; exit 1; }
  pkgs="$pkgs $p"
done
pkgs="$(echo "$pkgs" | tr ' ' '\n' | sort -u | tr '\n' ' ')"
cache="${MWAY_CACHE_DIR:-$repo/.cache}/debs"
mkdir -p "$cache"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for p in $pkgs; do
  v="$(dpkg-query -W -f='${Version}' "$p")"
  # By the version inside the .deb: apt writes an epoch's colon as %3a in the file name.
  pick() { for d in "$cache/${p}_"*.deb; do [ -e "$d" ] && [ "$(dpkg-deb -f "$d" Version)" = "$v" ] && { echo "$d"; return; }; done; true; }
  f="$(pick)"
  if [ -z "$f" ]; then
    # The installed version, or the archive's current one when that is gone (a stable
    # update of the same package: the same sonames).
    if ! (cd "$cache" && timeout 300 apt-get download "$p=$v" >/dev/null 2>&1); then
      (cd "$cache" && timeout 300 apt-get download "$p" >/dev/null 2>&1) || true
      v="$(apt-cache policy "$p" | awk '/Candidate:/{print $2}')"
    fi
    f="$(pick)"
    [ -n "$f" ] || { echo "pack-virt-module: apt-get download $p=$v left no .deb" >&2; exit 1; }
  fi
  dpkg-deb -x "$f" "$work/deb"
  mkdir -p "$work/copyright"
  cp "$work/deb/usr/share/doc/$p/copyright" "$work/copyright/$p" 2>/dev/null || true
done
cp -r "$repo/examples/modules/virt" "$work/src"
dest="$work/src/rootfs/virt"
mkdir -p "$dest/qemu/bin" "$dest/qemu/lib" "$dest/firmware" "$dest/qemu/copyright"
install -m 0755 "$work/deb/usr/bin/qemu-system-x86_64" "$dest/qemu/bin/"
for l in $libs; do
  n="$(basename "$l")"
  s=''
  for d in usr/lib/x86_64-linux-gnu lib/x86_64-linux-gnu usr/lib64 lib64; do
    [ -e "$work/deb/$d/$n" ] && { s="$work/deb/$d/$n"; break; }
  done
  [ -n "$s" ] || { echo "pack-virt-module: $n is in none of the downloaded packages ($pkgs)" >&2; exit 1; }
  install -m 0755 "$(readlink -f "$s")" "$dest/qemu/lib/$n"
done
# TCG is a loadable module of QEMU (qemu-system-common), found through QEMU_MODULE_DIR; the
# others (audio, display, spice) are left out with the libraries they would pull in.
mkdir -p "$dest/qemu/modules"
install -m 0644 "$work/deb/usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so" "$dest/qemu/modules/"
install -m 0644 "$work/deb/usr/share/OVMF/OVMF_CODE_4M.fd" "$work/deb/usr/share/OVMF/OVMF_VARS_4M.fd" "$dest/firmware/"
install -m 0644 "$work/copyright/"* "$dest/qemu/copyright/"
# The packed QEMU must run guest code under TCG on its own loader, libraries and module before
# it is signed: the reset vector of a 64 KiB firmware writes 1 to isa-debug-exit, exit 3.
printf '\260\001\346\364\364\353\375' | dd of="$work/probe.bin" bs=1 seek=65520 conv=notrunc status=none
truncate -s 65536 "$work/probe.bin"
rc=0
QEMU_MODULE_DIR="$dest/qemu/modules" timeout 20 "$dest/qemu/lib/ld-linux-x86-64.so.2" --library-path "$dest/qemu/lib" \
  "$dest/qemu/bin/qemu-system-x86_64" -accel tcg -machine q35 -cpu max -m 16 -nodefaults -no-user-config \
  -vga none -display none -bios "$work/probe.bin" -device isa-debug-exit,iobase=0xf4,iosize=0x04 || rc=$?
[ "$rc" = 3 ] || { echo "pack-virt-module: the packed QEMU did not run the TCG probe (exit $rc, expected 3)" >&2; exit 1; }
[ -z "$keep" ] || { mkdir -p "$keep" && cp -a "$work/src/rootfs/." "$keep/"; }
# The .deb's own date, so the same packages and source always give the same layer.
epoch="${SOURCE_DATE_EPOCH:-$(stat -c %Y "$dest/qemu/bin/qemu-system-x86_64")}"
"$repo/node_modules/.bin/node" "$repo/layers/bin/mway-layer.ts" pack "$work/src" \
  --key "$key" --cert "$cert" -o "$out" --source-date-epoch "$epoch" --quiet
echo "pack-virt-module: $out (qemu-system-x86 $(dpkg-query -W -f='${Version}' qemu-system-x86), $(echo $libs | wc -w) libraries)"
