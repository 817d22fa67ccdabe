#!/usr/bin/env bash
# test.sh — build and run every test: the release build, an ASan/UBSan build, and the
# libFuzzer targets (clang) for a bounded number of executions.
# Usage: scripts/test.sh [--quick]   (--quick: release build only)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
JOBS=$(nproc)

echo "== release build tests" >&2
ctest --test-dir build --output-on-failure -j"$JOBS"
[ "${1:-}" = "--quick" ] && exit 0

echo "== ASan/UBSan build tests" >&2
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DES_SANITIZE=ON >/dev/null
ninja -C build-asan >/dev/null
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j"$JOBS" -E '^(perplexity_demo)$'

echo "== libFuzzer targets (clang, ASan/UBSan)" >&2
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
      -DES_FUZZ=ON -DES_SANITIZE=ON >/dev/null
ninja -C build-fuzz >/dev/null
ctest --test-dir build-fuzz --output-on-failure -R '^fuzz_'
