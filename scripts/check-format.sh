#!/usr/bin/env bash
# check-format.sh — fails if any tracked C file differs from what clang-format (with the
# repository's .clang-format) makes of it. Usage: scripts/check-format.sh [FILE...]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
    mapfile -t files < <(git ls-files '*.c' '*.h')
else
    files=("$@")
fi
clang-format --dry-run -Werror "${files[@]}"
echo "check-format: ${#files[@]} files formatted" >&2
