#!/usr/bin/env bash
# compare_classifier.sh — an encoder emotion classifier (random, 6 layers, d 768, FFN 3072,
# 7 labels, F16 as llama.cpp's converter writes it) scoring the same texts with
# `emosteer score --classifier` and with llama.cpp's `llama-embedding --pooling rank` (its
# classifier path: one batch of all texts), end to end (load, tokenize, forward, output),
# alternating, K rounds; medians of the wall times and of the per-round ratios.
#
#   LLAMA_EMBEDDING=/path/to/llama-embedding bench/compare_classifier.sh [-t THREADS] [-n TEXTS]
#                                                                        [-T TOKENS] [-k ROUNDS]
#
# Environment passes through: ES_NO_AVX512=1 ES_NO_VNNI=1 runs emosteer's AVX2 path (compare with
# an AVX2 build of llama.cpp). llama.cpp is not part of emosteer: build it yourself outside this
# repository (target llama-embedding).
set -euo pipefail
cd "$(dirname "$0")/.."
T=2 N=32 TOK=128 K=3
while getopts "t:n:T:k:" o; do
  case $o in t) T=$OPTARG;; n) N=$OPTARG;; T) TOK=$OPTARG;; k) K=$OPTARG;; *) exit 2;; esac
done
LE=${LLAMA_EMBEDDING:-llama-embedding}
ES=${ES_BIN:-build/emosteer}
BC=${BC_BIN:-build/bench_classifier}
for b in "$ES" "$BC"; do [ -x "$b" ] || { echo "compare_classifier: not built: $b" >&2; exit 2; }; done
command -v "$LE" >/dev/null 2>&1 || [ -x "$LE" ] || { echo "compare_classifier: no llama-embedding ($LE)" >&2; exit 2; }
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
M=$DIR/enc6.gguf
"$BC" --threads "$T" --texts "$N" --tokens "$TOK" --keep "$M" >&2
secs() { /usr/bin/time -f %e "$@" 2>&1 >/dev/null | tail -1; }
E=() L=() R=()
for ((k = 1; k <= K; k++)); do
  e=$(secs "$ES" score --texts "$M.txt" --classifier "$M" -t "$T" -o "$DIR/out.jsonl")
  l=$(secs "$LE" -m "$M" -f "$M.txt" --pooling rank -t "$T" -tb "$T" -b $((N * TOK)) \
        -ub $((N * TOK)) -c $((N * TOK)))
  E+=("$e") L+=("$l") R+=("$(awk -v a="$e" -v b="$l" 'BEGIN { printf "%.4f", b / a }')")
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{ print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2 }'; }
e=$(median "${E[@]}") l=$(median "${L[@]}") r=$(median "${R[@]}")
printf "| texts x tokens | emosteer s (responses/s) | llama-embedding s (responses/s) | speed ratio |\n"
printf "| --- | ---: | ---: | ---: |\n"
printf "| %d x %d | %.2f (%.1f) | %.2f (%.1f) | %.2f |\n" "$N" "$TOK" "$e" \
  "$(awk -v n="$N" -v s="$e" 'BEGIN{print n/s}')" "$l" "$(awk -v n="$N" -v s="$l" 'BEGIN{print n/s}')" "$r"
