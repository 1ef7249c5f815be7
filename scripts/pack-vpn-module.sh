#!/usr/bin/env bash
# Packs the vpn module (examples/modules/vpn, doc/vpn.md) into a signed layer: the module's
# source with Debian's `wg` (package wireguard-tools, fetched by `apt-get download`, which
# checks it against the archive's signed index) at /vpn/bin/wg and its copyright file.
#   scripts/pack-vpn-module.sh --key KEY --cert CERT -o vpn.mwl [--deb wireguard-tools_….deb]
# The .deb is kept in $MWAY_CACHE_DIR/debs (default: the checkout's .cache/debs).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
key='' cert='' out='' deb=''
while [ $# -gt 0 ]; do
  case "$1" in
    --key) key="$2"; shift 2 ;;
    --cert) cert="$2"; shift 2 ;;
    -o|--out) out="$2"; shift 2 ;;
    --deb) deb="$2"; shift 2 ;;
    *) echo "pack-vpn-module: unknown argument $1 (--key, --cert, -o, --deb)" >&2; exit 2 ;;
  esac
done
if [ -z "$key" ] || [ -z "$cert" ] || [ -z "$out" ]; then
  echo 'pack-vpn-module: usage: pack-vpn-module.sh --key KEY --cert CERT -o OUT.mwl [--deb FILE]' >&2
  exit 2
fi
for t in dpkg-deb apt-get; do
  command -v "$t" >/dev/null || { echo "pack-vpn-module: $t is missing (Debian package dpkg / apt)" >&2; exit 1; }
done
if [ -z "$deb" ]; then
  cache="${MWAY_CACHE_DIR:-$repo/.cache}/debs"
  mkdir -p "$cache"
  deb="$(ls "$cache"/wireguard-tools_*_amd64.deb 2>/dev/null | sort | tail -n 1 || true)"
  if [ -z "$deb" ]; then
    (cd "$cache" && timeout 300 apt-get download wireguard-tools >&2)
    deb="$(ls "$cache"/wireguard-tools_*_amd64.deb | sort | tail -n 1)"
  fi
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$deb" "$work/deb"
cp -r "$repo/examples/modules/vpn" "$work/src"
mkdir -p "$work/src/rootfs/vpn/bin"
install -m 0755 "$work/deb/usr/bin/wg" "$work/src/rootfs/vpn/bin/wg"
install -m 0644 "$work/deb/usr/share/doc/wireguard-tools/copyright" "$work/src/rootfs/vpn/bin/wg.copyright"
# The .deb's own date, so the same package and source always give the same layer.
epoch="${SOURCE_DATE_EPOCH:-$(stat -c %Y "$work/deb/usr/bin/wg")}"
"$repo/node_modules/.bin/node" "$repo/layers/bin/mway-layer.ts" pack "$work/src" \
  --key "$key" --cert "$cert" -o "$out" --source-date-epoch "$epoch" --quiet
echo "pack-vpn-module: $out ($(basename "$deb"))"
