#!/usr/bin/env bash
# serve_rss.sh — does `emosteer serve` hold its memory under load? 1,000 streamed requests, each
# with its own steering mix, from C concurrent clients; the server's VmRSS (/proc/PID/status)
# after the first 100 requests and after all 1,000, and their ratio (goal: within 5%).
#
#   bench/serve_rss.sh [-t THREADS] [-C CLIENTS] [-P PARALLEL] [-n MAX_TOKENS] [-e EV_FILE]
#                      [-c CTX] [-m MODEL] EMOSTEER
#
# Defaults: 2 threads, 4 clients, --parallel 4, 64 tokens a request, the demo model and its
# vectors. Builds nothing. Prints one line per checkpoint and a summary line.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
T=2 CL=4 P=4 NT=64 EV="" C=512 MODEL=""
while getopts "t:C:P:n:e:c:m:" o; do
  case $o in t) T=$OPTARG;; C) CL=$OPTARG;; P) P=$OPTARG;; n) NT=$OPTARG;; e) EV=$OPTARG;;
             c) C=$OPTARG;; m) MODEL=$OPTARG;; *) exit 2;; esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || { sed -n '2,11p' "$0" >&2; exit 2; }
ES=$1
(( 100 % CL == 0 && 900 % CL == 0 )) || { echo "serve_rss: CLIENTS must divide 100 and 900" >&2; exit 2; }
ARGS=(serve -t "$T" -c "$C" --parallel "$P" --queue 256)
[ -n "$MODEL" ] && ARGS+=(-m "$MODEL")
[ -n "$EV" ] && ARGS+=(--ev "$EV")
PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
URL="http://127.0.0.1:$PORT"
LOG=$(mktemp /tmp/serve_rss.XXXXXX.log)
"$ES" "${ARGS[@]}" --host 127.0.0.1 --port "$PORT" > "$LOG" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 600); do
  kill -0 "$PID" 2>/dev/null || { echo "serve_rss: the server exited:" >&2; tail -5 "$LOG" >&2; exit 1; }
  curl -sf "$URL/health" >/dev/null 2>&1 && break
  sleep 0.2
done
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$PID/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$PID/status"; }
echo "server pid $PID, rss at start $(rss_kb) kB" >&2
load() {   # requests per client
  node "$HERE/serve_load.mjs" --url "$URL" --clients "$CL" --requests "$1" --max-tokens "$NT" \
       --steer on --api completions --warmup 0 --label rss
}
L1=$(load $((100 / CL)) || true); R1=$(rss_kb); H1=$(hwm_kb)
echo "after 100 requests: VmRSS $R1 kB (VmHWM $H1 kB); $L1"
L2=$(load $((900 / CL)) || true); R2=$(rss_kb); H2=$(hwm_kb)
echo "after 1000 requests: VmRSS $R2 kB (VmHWM $H2 kB); $L2"
F1=$(echo "$L1" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).failed))')
F2=$(echo "$L2" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).failed))')
awk -v a="$R1" -v b="$R2" -v f="$((F1 + F2))" 'BEGIN {
  d = (b - a) / a * 100
  printf "RSS after 100: %.1f MiB, after 1000: %.1f MiB, change %+.2f%% (%s), failed requests: %d\n",
         a / 1024, b / 1024, d, (d <= 5 && d >= -5) ? "within 5%" : "NOT within 5%", f }'
