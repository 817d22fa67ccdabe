#!/usr/bin/env bash
# fuzz_campaign.sh — a longer libFuzzer run of every fuzz target, one at a time, and a
# table of what each did.
#
#   bench/fuzz_campaign.sh [-n RUNS] [-t SECONDS] [-s SEED] [TARGET...]
#
#   -n RUNS     executions per target (default 1000000; libFuzzer -runs=RUNS)
#   -t SECONDS  time cap per target (default 600; libFuzzer -max_total_time), so a
#               slow target stops by itself; the table says how far it got
#   -s SEED     libFuzzer -seed (default 1)
#   TARGET...   fuzz_NAME names (default: every fuzz/fuzz_*.c)
#
# Builds the libFuzzer flavour (clang, ASan/UBSan) into build-fuzz if it is not built
# there yet (ninja is a no-op when it is up to date). Each target starts from a fresh
# corpus folder, build-fuzz/campaign/corpus_NAME, which the target primes with its own
# seeds (es_fuzz_prime_corpus); crashes, leaks, timeouts and OOMs land in
# build-fuzz/campaign/artifacts_NAME/ and are counted as findings. Logs:
# build-fuzz/campaign/NAME.log; the table is also written to build-fuzz/campaign/table.md.
# Columns: executions, exec/s (executions / seconds), libFuzzer's final cov: and ft:,
# the corpus at the end (files, KiB), and findings (artifact files, 0 if none).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=1000000
MAX_TIME=600
SEED=1
while getopts "n:t:s:h" o; do
    case $o in
    n) RUNS=$OPTARG ;;
    t) MAX_TIME=$OPTARG ;;
    s) SEED=$OPTARG ;;
    *)
        sed -n '2,20p' "$0"
        exit 2
        ;;
    esac
done
shift $((OPTIND - 1))

BUILD=build-fuzz
if [ ! -f "$BUILD/build.ninja" ]; then
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
        -DES_FUZZ=ON -DES_SANITIZE=ON >/dev/null || exit 1
fi
ninja -C "$BUILD" -j2 >/dev/null || {
    echo "fuzz_campaign: build failed (ninja -C $BUILD)" >&2
    exit 1
}

if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for src in fuzz/fuzz_*.c; do targets+=("$(basename "$src" .c)"); done
fi

OUTDIR=$BUILD/campaign
mkdir -p "$OUTDIR"
export ES_SHARED=${ES_SHARED:-$ROOT/../shared}
export ES_SOURCE=$ROOT
rows=()
status=0
for t in "${targets[@]}"; do
    bin=$BUILD/$t
    if [ ! -x "$bin" ]; then
        echo "fuzz_campaign: no $bin" >&2
        status=1
        continue
    fi
    corpus=$OUTDIR/corpus_$t
    artifacts=$OUTDIR/artifacts_$t
    log=$OUTDIR/$t.log
    rm -rf "$corpus" "$artifacts"
    mkdir -p "$corpus" "$artifacts"
    echo "== $t: up to $RUNS executions or ${MAX_TIME}s" >&2
    start=$(date +%s.%N)
    # the outer timeout only guards against a target that hangs outside libFuzzer's
    # own clock (e.g. in LLVMFuzzerInitialize)
    timeout -k 10 $((MAX_TIME + 120)) "$bin" -runs="$RUNS" -max_total_time="$MAX_TIME" \
        -seed="$SEED" -max_len=65536 -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1
    rc=$?
    end=$(date +%s.%N)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", b - a }')
    eps=$(awk -v n="${execs:-0}" -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", n / (b - a) }')
    files=$(find "$corpus" -type f | wc -l)
    kib=$(du -sk "$corpus" | cut -f1)
    findings=$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
        -o -name 'oom-*' \) | wc -l)
    if [ "$findings" -gt 0 ]; then
        findings="$findings ($(cd "$artifacts" && ls | tr '\n' ' ' | sed 's/ $//'))"
        status=1
    elif [ $rc -ne 0 ]; then
        findings="0 (exit $rc, see $log)"
        status=1
    fi
    rows+=("| $t | ${execs:-?} | ${secs}s | ${eps} | ${cov:-?} | ${ft:-?} | $files files, ${kib} KiB | $findings |")
done

{
    echo "| target | executions | time | exec/s | cov | ft | corpus | findings |"
    echo "|---|---:|---:|---:|---:|---:|---|---|"
    printf '%s\n' "${rows[@]}"
} | tee "$OUTDIR/table.md"
exit $status
