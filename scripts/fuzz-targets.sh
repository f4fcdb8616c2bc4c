#!/usr/bin/env bash
# Lists every fuzz target as "package:FuzzName", for `make fuzz-short` and
# `make fuzz`; with an argument, only the targets matching that extended
# regular expression (e.g. 'httpapi' or 'FuzzPasswords').
set -euo pipefail
cd "$(dirname "$0")/.."
pattern=${1:-.}
grep -rl --include='*_test.go' --exclude-dir=.tools '^func Fuzz' . | sort | while read -r f; do
  pkg="./$(dirname "${f#./}")"
  grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //' | while read -r name; do
    echo "$pkg:$name"
  done
done | { grep -E -- "$pattern" || true; }
