#!/bin/sh
# eval_demo.sh [OUT_DIR] [BIN] — the demo evaluation of the issue: demo-16m steered by
# models/demo-16m.ev.gguf, 5 emotions x alphas {-1,0,1,2,4} x 50 neutral queries, one
# sample each, 48 tokens, batch 32 (1250 responses). Prints the wall and CPU time
# (/usr/bin/time -v when installed; every run's stderr is appended to
# OUT_DIR/eval-stderr.txt) and the headline table; writes OUT_DIR/results.json,
# summary.csv, report.html and generations.jsonl. A second run with the same OUT_DIR
# resumes (and generates nothing when the first finished).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-/work/eval-demo}
bin=${2:-$here/build/emosteer}
if [ ! -x "$bin" ]; then
  echo "no emosteer binary at $bin (build it: cmake -S . -B build -G Ninja && ninja -C build emosteer_cli)" >&2
  exit 2
fi
resume=
[ -s "$out/generations.jsonl" ] && resume=--resume
set -- "$bin" eval -m "$here/models/demo-16m.q8_0.gguf" --ev "$here/models/demo-16m.ev.gguf" \
  --emotions joy,anger,disgust,fear,sadness --alphas -1,0,1,2,4 --n-queries 50 --samples 1 \
  -n 48 --batch 32 --seed 42 -o "$out" $resume
if [ -x /usr/bin/time ]; then
  log=$(mktemp)
  /usr/bin/time -v "$@" 2>"$log" || { cat "$log" >&2; rm -f "$log"; exit 1; }
  tr '\r' '\n' <"$log" >"$out/eval-stderr.txt.new" && rm -f "$log"
  # keep the log of every run (a resume must not hide the timing of the first)
  { echo "=== $(date -u +%Y-%m-%dT%H:%M:%SZ) $*"; cat "$out/eval-stderr.txt.new"; } >>"$out/eval-stderr.txt"
  grep -E "eval: (generated|done|[0-9]+ responses \()|Elapsed|User time|System time|Maximum resident|Percent of CPU" \
    "$out/eval-stderr.txt.new" >&2
  rm -f "$out/eval-stderr.txt.new"
else
  "$@"
fi
