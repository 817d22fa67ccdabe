#!/usr/bin/env bash
# test.sh — build and run every test, on every kernel path this CPU can run:
#   1. release build, the whole suite on the best kernels for this CPU
#   2. the whole suite again without AVX-512 (ES_NO_AVX512=1), and without AVX-512 or
#      VNNI (ES_NO_AVX512=1 ES_NO_VNNI=1: what an AVX2-only CPU such as Zen 3 runs)
#   3. the kernel, forward, quantized and steering tests on the scalar references
#      (ES_FORCE_SCALAR=1)
#   4. an ASan/UBSan build, the whole suite
#   5. the libFuzzer targets (clang, ASan/UBSan), a bounded number of executions each
#   6. clang-format: every C file of the tree is formatted (.clang-format)
# Every stage runs even when an earlier one failed; the script fails if any did.
# With CI set, a test that needs ../shared and cannot find it fails instead of skipping.
# Usage: scripts/test.sh [--quick]   (--quick: stage 1 only)
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh || exit 1
JOBS=$(nproc)
[ -n "${CI:-}" ] && export ES_REQUIRE_SHARED=1
failed=()
stage() { # stage NAME COMMAND...
    local name=$1
    shift
    echo "== $name" >&2
    if ! "$@"; then
        echo "== $name: FAILED" >&2
        failed+=("$name")
    fi
}
KERNEL_TESTS='^(kernels|kquants|vecops|forward|quant_fixtures|steer|cli_control_vector|cli_activations|random_model|moe|encoder|cli_encoder|batch_invariance)$'

stage "release" ctest --test-dir build --output-on-failure -j"$JOBS"
if [ "${1:-}" != "--quick" ]; then
    stage "release, ES_NO_AVX512=1" env ES_NO_AVX512=1 ctest --test-dir build --output-on-failure -j"$JOBS" -E '^fuzz_'
    stage "release, ES_NO_AVX512=1 ES_NO_VNNI=1" env ES_NO_AVX512=1 ES_NO_VNNI=1 \
        ctest --test-dir build --output-on-failure -j"$JOBS" -E '^fuzz_'
    stage "release, ES_FORCE_SCALAR=1 (kernel tests)" env ES_FORCE_SCALAR=1 \
        ctest --test-dir build --output-on-failure -j"$JOBS" -R "$KERNEL_TESTS"

    asan() {
        cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DES_SANITIZE=ON >/dev/null &&
            ninja -C build-asan >/dev/null &&
            ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j"$JOBS" -E '^(perplexity_demo|steer_demo)$'
    }
    stage "ASan/UBSan" asan

    fuzz() {
        cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
            -DES_FUZZ=ON -DES_SANITIZE=ON >/dev/null &&
            ninja -C build-fuzz >/dev/null &&
            ctest --test-dir build-fuzz --output-on-failure -R '^fuzz_'
    }
    stage "libFuzzer targets" fuzz

    stage "clang-format" scripts/check-format.sh
fi

if [ ${#failed[@]} -gt 0 ]; then
    echo "test.sh: FAILED stages: ${failed[*]}" >&2
    exit 1
fi
echo "test.sh: every stage passed" >&2
