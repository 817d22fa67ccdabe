#!/bin/sh
# run.sh FILE... — runs node test files (node:test) against a real `emosteer serve`
# ($EMOSTEER_BIN, set by CTest). Exit 77 (skipped) when Node.js or the npm packages of
# tests/node are missing, except with CI or ES_REQUIRE_SHARED set: then it fails.
here=$(dirname "$0")
missing=""
command -v node >/dev/null 2>&1 || missing="node"
[ -d "$here/node_modules/openai" ] && [ -d "$here/node_modules/playwright-core" ] || missing="$missing tests/node/node_modules (run scripts/setup.sh)"
case "$*" in
  *playground.test.mjs*) [ -x "${ES_CHROMIUM:-/usr/bin/chromium}" ] || missing="$missing chromium" ;;
esac
case "$*" in
  *nginx.test.mjs*) [ -x /usr/sbin/nginx ] || [ -x /usr/bin/nginx ] || missing="$missing nginx" ;;
esac
if [ -n "$missing" ]; then
  echo "run.sh: missing: $missing" >&2
  [ -n "${CI:-}${ES_REQUIRE_SHARED:-}" ] && exit 1
  exit 77
fi
exec node --test --test-reporter=spec --test-concurrency=1 "$@"
