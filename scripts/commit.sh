#!/usr/bin/env bash
# Commits only the given paths (others may be working in the same tree), retrying
# while another commit holds the index lock. Usage: scripts/commit.sh "message" PATH…
set -uo pipefail
msg="$1"; shift
for i in $(seq 1 30); do
  if git add -A -- "$@" 2>/tmp/commit.err && git commit -q -m "$msg" -- "$@" 2>>/tmp/commit.err; then
    git log --oneline -1; exit 0
  fi
  if grep -q "index.lock" /tmp/commit.err; then sleep 1; continue; fi
  if grep -q "nothing to commit\|no changes added" /tmp/commit.err; then echo "nothing to commit"; exit 0; fi
  cat /tmp/commit.err; exit 1
done
echo "commit: index stayed locked"; exit 1
