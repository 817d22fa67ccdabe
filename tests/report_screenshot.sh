#!/bin/sh
# report_screenshot.sh HTML PNG DOM — render a report page with headless Chromium:
# a 1200x3000 screenshot into PNG and the parsed DOM (after Chromium's HTML parser)
# into DOM. Exits 77 (skip) when no Chromium is installed ($CHROMIUM, else
# /usr/bin/chromium or /usr/bin/chromium-browser). Used by tests/test_report.c.
set -eu
if [ $# -ne 3 ]; then
  echo "usage: $0 HTML PNG DOM" >&2
  exit 2
fi
html=$1 png=$2 dom=$3
browser=${CHROMIUM:-}
if [ -z "$browser" ]; then
  for c in /usr/bin/chromium /usr/bin/chromium-browser; do
    if [ -x "$c" ]; then browser=$c; break; fi
  done
fi
if [ -z "$browser" ]; then
  echo "SKIP: chromium not found (apt-get install -y chromium)"
  exit 77
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
url="file://$(realpath "$html")"
# no network, no first-run work, a throw-away profile
set -- --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --hide-scrollbars --user-data-dir="$profile"
timeout 120 "$browser" "$@" --screenshot="$png" --window-size=1200,3000 "$url" >/dev/null 2>&1
timeout 120 "$browser" "$@" --dump-dom "$url" >"$dom" 2>/dev/null
