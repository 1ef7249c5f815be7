#!/usr/bin/env bash
# Puts the five MilkyWay commands on PATH: one small shim per command in BIN_DIR
# (default /usr/local/bin as root, ~/.local/bin otherwise; MWAY_BIN_DIR overrides) that runs
# it with this checkout's Node 24 (node_modules/.bin/node, from the pinned `node` package, so
# an older system node does not matter). Paths given to a command stay relative to the
# directory it is run from. Run by scripts/setup.sh; safe to run again.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
if [ -n "${MWAY_BIN_DIR:-}" ]; then dir="$MWAY_BIN_DIR"
elif [ "$(id -u)" -eq 0 ]; then dir=/usr/local/bin
else dir="$HOME/.local/bin"; fi
node="$repo/node_modules/.bin/node"
if [ ! -x "$node" ]; then
  echo "install-bin: $node is missing: run npm ci in $repo first" >&2
  exit 1
fi
mkdir -p "$dir"
# Assigned first so that set -e stops the script when the list cannot be read.
commands="$("$node" "$repo/scripts/commands.mjs")"
while IFS=' ' read -r name entry; do
  tmp="$(mktemp "$dir/.$name.XXXXXX")"
  # Node's compile cache (as the agent uses): the type-stripped, compiled modules are kept, so
  # a second start does not strip and compile them again (bench/cli.ts measures it).
  printf '#!/bin/sh\n# MilkyWay %s from %s (scripts/install-bin.sh)\n: "${NODE_COMPILE_CACHE:=${XDG_CACHE_HOME:-$HOME/.cache}/milkyway/node-compile-cache}"\nexport NODE_COMPILE_CACHE\nexec "%s" "%s" "$@"\n' \
    "$name" "$repo" "$node" "$repo/$entry" > "$tmp"
  chmod 0755 "$tmp"
  mv -f "$tmp" "$dir/$name"
done <<< "$commands"
echo "install-bin: mway, milkywaysrvd, mway-layer, mway-image, milkyway-agent in $dir"
case ":$PATH:" in
  *":$dir:"*) ;;
  *) echo "install-bin: $dir is not on your PATH; add it (export PATH=\"$dir:\$PATH\")" ;;
esac
