#!/usr/bin/env bash
# Runs every Go fuzz target of the module for a short budget each.
# Usage: fuzz.sh [FUZZTIME]   (default 5s)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
budget="${1:-5s}"
count=0
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "fuzz: $pkg $target ($budget)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$budget" "$pkg"
    count=$((count + 1))
  done
done
echo "fuzz: $count targets ran"
