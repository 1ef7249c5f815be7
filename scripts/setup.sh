#!/usr/bin/env bash
# One-command setup for a fresh Debian 12 machine: the system tools MilkyWay drives
# (named in doc/ARCHITECTURE.md) and the npm dependencies, pinned by package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  cryptsetup-bin erofs-utils squashfs-tools dosfstools mtools e2fsprogs fdisk gdisk
  cpio busybox-static bubblewrap secilc checkpolicy qemu-system-x86 qemu-utils ovmf
  systemd-boot-efi sbsigntool kexec-tools dbus umoci skopeo util-linux iproute2 kmod
  zstd binutils ca-certificates openssl nats-server mmdebstrap curl docker-registry postgresql-client
  setools coreutils attr gcc libc6-dev faketime efitools genisoimage bash-completion
  python3-jsonschema zsh fish
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: Debian packages already installed"
fi

echo "setup: npm ci"
npm ci --no-audit --no-fund
# The five commands on PATH (shims running this checkout with its Node 24).
scripts/install-bin.sh
# Their man pages and bash/zsh/fish completions (generated from the command trees).
scripts/install-docs.sh
echo "setup: done (node $(npx --no-install node --version))"
