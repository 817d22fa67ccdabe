#!/usr/bin/env bash
# compare_llamacpp.sh — emosteer bench and llama.cpp's llama-bench on the same GGUF files,
# same threads, run back to back, and the ratio emosteer / llama.cpp per test.
#
#   LLAMA_BENCH=/path/to/llama-bench bench/compare_llamacpp.sh [-t THREADS] [-r REPS] [-k ROUNDS] MODEL...
#
# With -k ROUNDS (default 1) the pair of runs is repeated ROUNDS times, alternating, and the
# table shows the medians of each side and of the per-round ratios: on a shared machine
# whose speed drifts by 10% or more between minutes, only ratios measured side by side mean
# anything.
#
# llama.cpp is not part of emosteer: build it yourself outside this repository
# (e.g. from the source bundled in the npm package node-llama-cpp, `llama-bench` target).
set -euo pipefail
cd "$(dirname "$0")/.."
T=2 R=5 P=256 N=64 K=1
while getopts "t:r:p:n:k:" o; do case $o in t) T=$OPTARG;; r) R=$OPTARG;; p) P=$OPTARG;; n) N=$OPTARG;; k) K=$OPTARG;; *) exit 2;; esac; done
shift $((OPTIND - 1))
LB=${LLAMA_BENCH:-llama-bench}
ES=${ES_BIN:-build/emosteer}
printf "| model | test | emosteer t/s | llama.cpp t/s | ratio |\n| --- | --- | ---: | ---: | ---: |\n"
median() { sort -g | awk '{v[NR]=$1} END{ if (NR == 0) print 0; else if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2 }'; }
for m in "$@"; do
  declare -A E=() L=() Q=()
  for ((k = 1; k <= K; k++)); do
    es=$("$ES" bench -m "$m" -p "$P" -n "$N" -t "$T" -r "$R" -o csv 2>/dev/null | tail -n +2)
    lc=$("$LB" -m "$m" -p "$P" -n "$N" -t "$T" -r "$R" -o csv 2>/dev/null | tr -d '"')
    for test in "pp$P" "tg$N"; do
      e=$(echo "$es" | awk -F, -v t="$test" '$5==t {print $6}')
      if [ "${test:0:2}" = pp ]; then l=$(echo "$lc" | awk -F, -v p="$P" 'NR==1{for(i=1;i<=NF;i++){if($i=="n_prompt")np=i; if($i=="n_gen")ng=i; if($i=="avg_ts")ts=i}} NR>1 && $np==p && $ng==0 {print $ts}'); fi
      if [ "${test:0:2}" = tg ]; then l=$(echo "$lc" | awk -F, -v g="$N" 'NR==1{for(i=1;i<=NF;i++){if($i=="n_prompt")np=i; if($i=="n_gen")ng=i; if($i=="avg_ts")ts=i}} NR>1 && $np==0 && $ng==g {print $ts}'); fi
      E[$test]+="${e:-0} "; L[$test]+="${l:-0} "
      Q[$test]+="$(awk -v a="${e:-0}" -v b="${l:-0}" 'BEGIN{ if (b > 0) printf "%.4f", a / b; else print 0 }') "
    done
  done
  for test in "pp$P" "tg$N"; do
    e=$(echo ${E[$test]} | tr ' ' '\n' | median); l=$(echo ${L[$test]} | tr ' ' '\n' | median)
    r=$(echo ${Q[$test]} | tr ' ' '\n' | median)
    printf "| %s | %s | %.1f | %.1f | %.2f |\n" "$(basename "$m")" "$test" "$e" "$l" "$r"
  done
  unset E L Q
done
