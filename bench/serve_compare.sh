#!/usr/bin/env bash
# serve_compare.sh — `emosteer serve` against llama.cpp's `llama-server` under load, side by side
# in one run: for each N the two servers are started in turn (same model, threads, context per
# slot, --parallel N), loaded by bench/serve_load.mjs with N concurrent streaming clients of M
# requests each, and stopped. Builds nothing.
#
#   bench/serve_compare.sh [-t THREADS] [-c CTX_PER_SLOT] [-M REQUESTS] [-n MAX_TOKENS]
#                          [-N "1 4 16"] [-k ROUNDS] [-e EV_FILE] [-p PROMPT_SET] [-s on|off] [-P on|off]
#                          [-o OUT_DIR] EMOSTEER LLAMA_SERVER MODEL
#
# Every request is a streamed /v1/completions with a raw prompt (the random models have a
# placeholder vocabulary and no chat template), temperature 0, ignore_eos, max_tokens
# MAX_TOKENS (default 64), so both servers generate the same number of tokens. emosteer's
# requests each carry their own steering mix (-s on, the default; -e gives the vectors when the
# model has none beside it); llama-server's carry none (it cannot steer per request).
# Prompt caches: a server may reuse a slot's cached prefix when a request repeats a prompt
# (the load cycles through 8). emosteer can only where the steering at those positions is the
# same (a mix steers the prompt too, by default), so its steered requests reuse almost nothing,
# while llama-server's unsteered ones reuse nearly every prompt after the warm-up. -P off
# sends llama-server `cache_prompt: false`, so both compute every prompt; the table shows the
# prompt tokens each side took from its cache.
# Environment is passed through: ES_NO_AVX512=1 bench/serve_compare.sh ... runs emosteer's
# AVX2 path. Raw JSON lines go to OUT_DIR/results.jsonl, server logs to OUT_DIR/*.log.
# With -k ROUNDS (default 1) every pair of runs is repeated ROUNDS times and the table shows
# medians (the ratio: the median of the per-round ratios): on a shared machine whose speed
# drifts between minutes, only figures measured side by side mean anything.
#
# llama.cpp is not part of emosteer: build llama-server yourself outside this repository.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
T=2 C=512 M=4 NT=64 NS="1 4 16" K=1 EV="" PS=short STEER=on OUT="" PC=on
while getopts "t:c:M:n:N:k:e:p:s:P:o:" o; do
  case $o in t) T=$OPTARG;; c) C=$OPTARG;; M) M=$OPTARG;; n) NT=$OPTARG;; N) NS=$OPTARG;; k) K=$OPTARG;;
             e) EV=$OPTARG;; p) PS=$OPTARG;; s) STEER=$OPTARG;; P) PC=$OPTARG;;
             o) OUT=$OPTARG;; *) exit 2;; esac
done
shift $((OPTIND - 1))
[ $# -eq 3 ] || { sed -n '2,27p' "$0" >&2; exit 2; }
case $PC in on|off) ;; *) echo "serve_compare: -P on|off" >&2; exit 2;; esac
ES=$1 LS=$2 MODEL=$3
for b in "$ES" "$LS"; do [ -x "$b" ] || { echo "serve_compare: not an executable: $b" >&2; exit 2; }; done
[ -f "$MODEL" ] || { echo "serve_compare: no model $MODEL" >&2; exit 2; }
OUT=${OUT:-$(mktemp -d /tmp/serve_compare.XXXXXX)}
mkdir -p "$OUT"
RES="$OUT/results.jsonl"
: > "$RES"

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

PID=""
stop_server() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$PID" 2>/dev/null && kill -KILL "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  PID=""
}
trap stop_server EXIT

wait_health() {   # url, log file
  for _ in $(seq 600); do
    if ! kill -0 "$PID" 2>/dev/null; then echo "serve_compare: the server exited, see $2" >&2; tail -5 "$2" >&2; return 1; fi
    if curl -sf "$1/health" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "serve_compare: no /health after 120 s, see $2" >&2; return 1
}

run_one() {   # name N steer round cache_prompt -- server command...
  local name=$1 n=$2 steer=$3 round=$4 pc=$5; shift 6
  local port; port=$(free_port)
  local log="$OUT/$name-N$n-r$round.log"
  "$@" --host 127.0.0.1 --port "$port" > "$log" 2>&1 &
  PID=$!
  wait_health "http://127.0.0.1:$port" "$log"
  local line
  line=$(node "$HERE/serve_load.mjs" --url "http://127.0.0.1:$port" --clients "$n" --requests "$M" \
           --max-tokens "$NT" --prompt-set "$PS" --steer "$steer" --cache-prompt "$pc" --api completions --label "$name r$round") || true
  stop_server
  [ -n "$line" ] || line="{\"label\":\"$name r$round\",\"clients\":$n,\"failed\":-1}"
  echo "$line" >> "$RES"
  echo "$line" >&2
}

EVARGS=()
[ -n "$EV" ] && EVARGS=(--ev "$EV")
for ((k = 1; k <= K; k++)); do
  for n in $NS; do
    run_one emosteer "$n" "$STEER" "$k" on -- "$ES" serve -m "$MODEL" "${EVARGS[@]}" -t "$T" -c "$C" --parallel "$n" --queue 256
    # llama-server divides -c among its slots: C per slot, as emosteer's -c.
    run_one llama-server "$n" off "$k" "$PC" -- "$LS" -m "$MODEL" -t "$T" -tb "$T" -c $((C * n)) --parallel "$n" --no-webui
  done
done

node - "$RES" "$(basename "$MODEL")" <<'EOF'
const fs = require('fs');
const rows = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const model = process.argv[3];
const f = (x, d = 1) => (x === null || x === undefined || Number.isNaN(x) ? '–' : Number(x).toFixed(d));
const med = (xs) => { xs = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b);
                      if (!xs.length) return null; const h = xs.length >> 1;
                      return xs.length % 2 ? xs[h] : (xs[h - 1] + xs[h]) / 2; };
const side = (r) => r.label.split(' ')[0];
const round = (r) => r.label.split(' ')[1];
console.log('| model | N | emosteer tok/s | llama-server tok/s | ratio | TTFT p50 ms (es / llama) | latency p50/p99 ms emosteer | latency p50/p99 ms llama-server | cached prompt tokens (es / llama) | failed (es / llama) |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const n of [...new Set(rows.map((r) => r.clients))]) {
  const E = rows.filter((r) => r.clients === n && side(r) === 'emosteer');
  const L = rows.filter((r) => r.clients === n && side(r) === 'llama-server');
  const ratios = E.map((e) => { const l = L.find((x) => round(x) === round(e));
                                return e.tok_per_s && l?.tok_per_s ? e.tok_per_s / l.tok_per_s : null; });
  const m = (R, g) => med(R.map(g));
  const fails = (R) => R.reduce((s, r) => s + (r.failed ?? 0), 0);
  console.log(`| ${model} | ${n} | ${f(m(E, (r) => r.tok_per_s))} | ${f(m(L, (r) => r.tok_per_s))} | ${f(med(ratios), 2)} | ` +
              `${f(m(E, (r) => r.ttft_ms?.p50), 0)} / ${f(m(L, (r) => r.ttft_ms?.p50), 0)} | ` +
              `${f(m(E, (r) => r.latency_ms?.p50), 0)} / ${f(m(E, (r) => r.latency_ms?.p99), 0)} | ` +
              `${f(m(L, (r) => r.latency_ms?.p50), 0)} / ${f(m(L, (r) => r.latency_ms?.p99), 0)} | ` +
              `${f(m(E, (r) => r.cached_prompt_tokens), 0)} of ${f(m(E, (r) => r.prompt_tokens), 0)} / ` +
              `${f(m(L, (r) => r.cached_prompt_tokens), 0)} of ${f(m(L, (r) => r.prompt_tokens), 0)} | ` +
              `${fails(E)} / ${fails(L)} |`);
}
EOF
echo "raw results: $RES" >&2
